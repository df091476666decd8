"""The audit ledger (DESIGN §4), layer 6: a leaf every layer may call.

It imports only the shared kernel (clinaiops.core) and the standard libraries; import-linter enforces that.
Writes go through `services.audit_record`, inside the transaction of the change they record. Checkpoints
(`services.audit_checkpoint_create`) are signed, and published outside the database by `witness`. `verify` judges
the ledger against both. On PostgreSQL the app connects as a runtime role that may only read the ledger and
append through SECURITY DEFINER functions; `roles` and `manage.py db_roles` set that up (docs/security.md).
"""
