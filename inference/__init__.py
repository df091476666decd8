"""The model lifecycle: features, dataset snapshots, training, the registry and its gates, signed manifests,
serving pointers and the runtime that scores and explains (DESIGN §3).

Layer 4 of DESIGN §9, between governance and clinaiops.care. It may import clinaiops.care, the audit ledger
(clinaiops.audit) and the shared kernel (clinaiops.core); never governance, the loops or the surfaces, which
build on it. Its own modules do not import inference.monitoring, which builds on them (routing, the prediction
log, drift reports). The pure computations (features, training, quality, calibration, fairness, drift and the
gate judgements in inference.gates) import no Django.
"""
