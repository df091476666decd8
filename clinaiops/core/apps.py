from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "clinaiops.core"
    label = "core"
    verbose_name = "Core"
