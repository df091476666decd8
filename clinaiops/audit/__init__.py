"""The audit ledger (DESIGN §4), layer 6: a leaf every layer may call.

It imports only the shared kernel (clinaiops.core) and the standard libraries; import-linter enforces that.
Writes go through `services.audit_record`, inside the transaction of the change they record.
"""
