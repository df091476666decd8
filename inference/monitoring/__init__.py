"""Deployment monitoring (DESIGN §3 "Deployment arms", "Serving", "Drift"): routing patients to arms, the
prediction log and shadow scores, canary stages and the circuit breaker, model-integrity holds, drift reports and
alerts for ML engineers.

It builds on inference and sits inside its layer (layer 4 of DESIGN §9): it may import inference (models,
selectors, services, the runtime and the pure drift statistics), clinaiops.care, clinaiops.audit and
clinaiops.core. Nothing else in inference imports it, so the dependency runs one way. The loops, above, call its
routing and services and pass in what it needs; it never reads their tables.
"""
