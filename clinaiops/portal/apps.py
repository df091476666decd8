from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "clinaiops.portal"
    label = "portal"
    verbose_name = "Clinician portal"
