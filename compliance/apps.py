from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    label = "compliance"
    verbose_name = "Compliance exports"

    def ready(self) -> None:
        from compliance.signals import export_requested
        from compliance.tasks import export_requested_enqueue

        export_requested.connect(export_requested_enqueue, dispatch_uid="compliance-export-requested")
