"""Clinical records: patients, care teams, readings, symptoms, doses, alerts, regimen changes and break-glass
grants, with their services, selectors and the one care-team access check (clinaiops.care.access).

Layer 5 of DESIGN §9. It may import only the audit ledger (clinaiops.audit) and the shared kernel
(clinaiops.core); inference, governance, the loops and the surfaces build on it, never the other way round.
"""
