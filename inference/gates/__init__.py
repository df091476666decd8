"""The gates a candidate passes before it is *validated* (DESIGN §3 "Gates"), one module per gate:

* ``data_quality`` (hard), ``onnx_parity`` (hard), ``non_inferiority`` (hard), ``calibration`` (hard),
  ``fairness`` (hard unless MODEL_GATE_FAIRNESS_ENFORCED is off) and ``change_control`` (not hard);
* ``result``: what every gate returns (a frozen dataclass with its status, numbers, bound, findings and
  failures) and the typed readers for the stored form;
* ``outcome``: all gates together (verdict, rejections, findings) and `gate_outcome_load`, which reads the
  JSON stored on a model version back into typed results;
* ``evaluation``: gathers the evidence (validation rows, the production model, the plan, the bounds in
  settings) and runs the gates.

A hard gate that fails rejects the version, naming the gate; findings do not reject it but must be
acknowledged by the clinical safety officer's sign-off (governance.signoffs).

Part of inference (layer 4 of DESIGN §9). The gate modules, ``result`` and ``outcome`` are pure: they import
numpy and inference's pure computations (inference.calibration, inference.fairness) and no Django, so that
inference.models can read its gates back without a cycle. Only ``evaluation`` reads the database, artifacts
and settings; nothing here imports inference.services, inference.monitoring or a higher layer.
"""
