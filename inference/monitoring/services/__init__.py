"""Deployment monitoring writes (DESIGN §3 "Deployment arms", "Serving", "Drift"), one module per job:

* ``predictions``: the prediction log and shadow scores, written by the loops inside the recommendation's
  transaction, and clinician outcomes, passed in by the loops' review service;
* ``alerts``: alerts for ML engineers (model integrity, severe drift, canary rollback);
* ``integrity``: what happens when a model's artifact fails its hash;
* ``canary``: canary stages and the circuit breaker;
* ``drift_reports``: drift reports, which on severe drift start a candidate retraining run. Nothing here
  promotes a model.

Import from the module that does the job: this package re-exports nothing. (A re-exporting facade made the
circle predictions → tasks → services → predictions.)
"""
