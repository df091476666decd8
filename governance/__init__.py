"""Governance: the approval policy and its tiering rule, per-patient autonomy bounds, electronic signatures,
model sign-offs, the accounting of access, and the user roles that decide who may do what.

Layer 3 of DESIGN §9, between the loops and inference. It may import inference, clinaiops.care, the audit
ledger (clinaiops.audit) and the shared kernel (clinaiops.core); never the loops or the surfaces.
governance.policy is a pure computation and imports no Django.
"""
