"""Deployment monitoring writes (DESIGN §3 "Deployment arms", "Serving", "Drift").

* ``predictions``: the prediction log and shadow scores, written by the loops inside the recommendation's
  transaction, and clinician outcomes, passed in by the loops' review service;
* ``alerts``: alerts for ML engineers (model integrity, severe drift, canary rollback);
* ``integrity``: what happens when a model's artifact fails its hash;
* ``canary``: canary stages and the circuit breaker;
* ``drift_reports``: drift reports, which on severe drift start a candidate retraining run. Nothing here
  promotes a model.
"""

from inference.monitoring.services.alerts import monitoring_alert_acknowledge
from inference.monitoring.services.canary import breaker_reasons, canary_breaker_check, canary_stage_advance
from inference.monitoring.services.drift_reports import drift_report_compute
from inference.monitoring.services.integrity import model_integrity_failure_record, model_integrity_hold_seen
from inference.monitoring.services.predictions import (
    decision_outcome_record,
    prediction_log_record,
    shadow_score_record,
)

__all__ = [
    "breaker_reasons",
    "canary_breaker_check",
    "canary_stage_advance",
    "decision_outcome_record",
    "drift_report_compute",
    "model_integrity_failure_record",
    "model_integrity_hold_seen",
    "monitoring_alert_acknowledge",
    "prediction_log_record",
    "shadow_score_record",
]
