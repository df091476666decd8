from django.apps import AppConfig


class CareConfig(AppConfig):
    name = "clinaiops.care"
    label = "care"
    verbose_name = "Clinical records"

    def ready(self) -> None:
        # The notification service signals; the task module answers, so the service never imports its task.
        from clinaiops.care.signals import notifications_created
        from clinaiops.care.tasks import notifications_created_receiver

        notifications_created.connect(notifications_created_receiver, dispatch_uid="care.notifications_created")
