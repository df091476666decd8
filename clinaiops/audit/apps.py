from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "clinaiops.audit"
    label = "audit"
    verbose_name = "Audit ledger"

    def ready(self) -> None:
        from clinaiops.audit import checks  # noqa: F401 - registers the deploy check
