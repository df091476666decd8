"""The patient mobile API (/api/v1/, DRF, JWT): readings, symptoms, recommendations and the patient's own
record and access log.

Layer 1 of DESIGN §9, a surface beside clinaiops.portal and compliance (which it never imports). It may import
every layer below: clinaiops.loops, governance, inference, clinaiops.care, the audit ledger and clinaiops.core.
Views stay thin: validate, call a service or selector, serialize.
"""
