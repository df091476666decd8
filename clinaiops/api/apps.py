from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "clinaiops.api"
    label = "api"
    verbose_name = "Patient mobile API"
