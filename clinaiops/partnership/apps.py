from django.apps import AppConfig


class PartnershipConfig(AppConfig):
    name = "clinaiops.partnership"
    label = "partnership"
    verbose_name = "Patient–clinician loop"
