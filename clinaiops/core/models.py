from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    CLINICIAN = "clinician", "Clinician"
    ML_ENGINEER = "ml_engineer", "ML engineer"
    SAFETY_OFFICER = "safety_officer", "Clinical safety officer"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    SYSTEM = "system", "System"
    # A service account (a hospital's device gateway) that posts readings for the patients of its care teams.
    DEVICE_GATEWAY = "device_gateway", "Device gateway"


class User(AbstractUser):
    """A person who signs in. The role decides which surface and which records they may use."""

    role = models.CharField(max_length=32, choices=Role.choices)
    # The printed name shown in e-signature manifestations (21 CFR 11.50(a)(1)).
    printed_name = models.CharField(max_length=150, blank=True)
    # Set after repeated failed signature re-authentications (21 CFR 11.300(d)); sign-in is refused until then.
    locked_until = models.DateTimeField(null=True, blank=True)
    # Every API token carries the generation it was issued under, and authentication refuses any other
    # (clinaiops/api/auth.py). Bumping it revokes every token of the user at once, access tokens included: on a
    # password change, a deactivation or a lock-out. A counter rather than a "valid after" time, so that neither
    # the one-second resolution of a JWT's `iat` nor clock skew between hosts can let a token through.
    token_generation = models.PositiveIntegerField(default=0, editable=False)

    def __str__(self) -> str:
        return self.username

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saving a new password (`set_password`, by any path: a form, `changepassword`, the admin) or an inactive
        account revokes the user's API tokens. A rehash on sign-in is not a password change: Django clears
        `_password` before that save."""
        adding = self._state.adding
        revoke = not adding and (getattr(self, "_password", None) is not None or not self.is_active)
        if not adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            # A full save never writes the generation back: an instance loaded before a revocation would
            # otherwise undo it and bring the revoked tokens back to life.
            deferred = self.get_deferred_fields()
            kwargs["update_fields"] = [
                field.attname
                for field in self._meta.concrete_fields
                if not field.primary_key and field.attname not in deferred and field.name != "token_generation"
            ]
        if not revoke:
            super().save(*args, **kwargs)
            return
        with transaction.atomic():
            super().save(*args, **kwargs)
            self.tokens_revoke()

    @property
    def signature_name(self) -> str:
        return self.printed_name or self.get_full_name() or self.username

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()

    def tokens_revoke(self) -> None:
        """Revoke every API token of this user. An atomic increment, so concurrent revocations never cancel out.
        The caller records why in the audit ledger, in the same transaction (the kernel cannot import it)."""
        User.objects.filter(pk=self.pk).update(token_generation=F("token_generation") + 1)
        self.refresh_from_db(fields=["token_generation"])


class RevokedTokenFamily(models.Model):
    """One API sign-in that was ended: the chain of refresh tokens that rotation makes from one sign-in, and the
    access tokens they issued, share a family id. Signing out, or presenting a refresh token that was already
    used (a sign that it was stolen), revokes the family, so every token of it is refused from then on."""

    class Reason(models.TextChoices):
        SIGNED_OUT = "signed_out", "Signed out"
        REFRESH_REUSED = "refresh_reused", "A used refresh token was presented again"

    family = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="revoked_token_families")
    reason = models.CharField(max_length=32, choices=Reason.choices)
    revoked_at = models.DateTimeField(default=timezone.now)
    # No token of the family is valid after this (its refresh tokens expire then); the row can be purged.
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.family} ({self.reason})"
