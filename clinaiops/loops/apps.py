from django.apps import AppConfig


class LoopsConfig(AppConfig):
    name = "clinaiops.loops"
    label = "loops"
    verbose_name = "ClinAIOps loops"
