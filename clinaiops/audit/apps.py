from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "clinaiops.audit"
    label = "audit"
    verbose_name = "Audit ledger"
