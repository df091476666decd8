from django.apps import AppConfig


class CareConfig(AppConfig):
    name = "clinaiops.care"
    label = "care"
    verbose_name = "Clinical records"
