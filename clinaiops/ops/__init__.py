"""Operability: Prometheus metrics, health probes and structured logs for the on-call engineer
(docs/operations.md).

Layer 1 of DESIGN §9: it reads across the house (the loops, governance, inference, care, the ledger and the
kernel), so it sits in the surface layer beside clinaiops.api, clinaiops.portal and compliance, none of which it
imports. Nothing imports it except settings (middleware, logging) and the URL configuration.
"""
