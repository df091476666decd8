from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "inference.monitoring"
    label = "monitoring"
    verbose_name = "Deployment monitoring and drift"
