from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    label = "inference"
    verbose_name = "Model lifecycle"

    def ready(self) -> None:
        # Imported here: tasks import the services, which may only be imported once the apps are loaded.
        from inference.signals import training_run_queued
        from inference.tasks import training_run_queued_enqueue

        training_run_queued.connect(training_run_queued_enqueue, dispatch_uid="inference-training-run-queued")
