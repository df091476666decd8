"""Operability: Prometheus metrics, health probes and structured logs for the on-call engineer
(docs/operations.md). It reads across the house, so it sits in the surface layer beside the API and the portal;
nothing imports it except settings (middleware, logging) and the URL configuration."""
