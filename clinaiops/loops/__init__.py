"""The three loops of DESIGN §2 as services (clinaiops.loops.services), the safety rules (safety, pure) and the
patients' wording (wording, pure).

Layer 2 of DESIGN §9. It may import governance, inference, clinaiops.care, the audit ledger (clinaiops.audit)
and the shared kernel (clinaiops.core); only the surfaces (api, portal, ops,
compliance) and fixtures import it.
"""
