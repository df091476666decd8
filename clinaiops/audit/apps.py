from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "clinaiops.audit"
    label = "audit"
    verbose_name = "Audit ledger"

    def ready(self) -> None:
        # Imported in ready(): these modules import models, which exist only once the app registry is loaded.
        from clinaiops.audit import checks  # noqa: F401 - registers the deploy check
        from clinaiops.audit.signals import checkpoint_due
        from clinaiops.audit.tasks import checkpoint_due_enqueue

        checkpoint_due.connect(checkpoint_due_enqueue, dispatch_uid="audit-checkpoint-due")
