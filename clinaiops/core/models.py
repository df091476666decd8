from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    CLINICIAN = "clinician", "Clinician"
    ML_ENGINEER = "ml_engineer", "ML engineer"
    SAFETY_OFFICER = "safety_officer", "Clinical safety officer"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    SYSTEM = "system", "System"


class User(AbstractUser):
    """A person who signs in. The role decides which surface and which records they may use."""

    role = models.CharField(max_length=32, choices=Role.choices)
    # The printed name shown in e-signature manifestations (21 CFR 11.50(a)(1)).
    printed_name = models.CharField(max_length=150, blank=True)
    # Set after repeated failed signature re-authentications (21 CFR 11.300(d)); sign-in is refused until then.
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.username

    @property
    def signature_name(self) -> str:
        return self.printed_name or self.get_full_name() or self.username

    @property
    def is_locked(self) -> bool:
        from django.utils import timezone

        return self.locked_until is not None and self.locked_until > timezone.now()

    @property
    def is_staff_role(self) -> bool:
        return self.role in {Role.CLINICIAN, Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER}
