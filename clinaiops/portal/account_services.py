"""Account writes of the portal: a password change and the second factor (enrol, remove), each audited in the same
transaction. Sign-in itself is in clinaiops/portal/views/account.py; who needs MFA is clinaiops.core.mfa."""

from __future__ import annotations

import secrets
import time
from base64 import b32encode
from binascii import unhexlify

from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.core.errors import Conflict, PermissionRefused, ValidationFailed
from clinaiops.core.mfa import DEVICE_NAME, mfa_code_verify, mfa_device, mfa_required
from clinaiops.core.models import User

# 20 random bytes, the RFC 4226 recommendation for an HMAC-SHA1 secret.
TOTP_KEY_BYTES = 20


def totp_key_new() -> str:
    """A new TOTP secret, hex-encoded as django-otp stores it."""
    return secrets.token_hex(TOTP_KEY_BYTES)


def totp_key_base32(key_hex: str) -> str:
    """The secret as authenticator apps take it when typed in (base32, no padding)."""
    return b32encode(unhexlify(key_hex)).decode().rstrip("=")


def totp_config_uri(*, user: User, key_hex: str) -> str:
    """The otpauth:// URI of an enrolment (what the QR code holds)."""
    return str(TOTPDevice(user=user, key=key_hex).config_url)


def account_password_change(*, user: User, new_password: str) -> None:
    """Set a new password (already validated against AUTH_PASSWORD_VALIDATORS by the form). Saving it revokes every
    API token of the user (core.User.save); Django ends the user's other portal sessions by their session hash."""
    with transaction.atomic():
        user.set_password(new_password)
        user.save()
        audit_record(
            action=AuditAction.PASSWORD_CHANGED,
            object_type="user",
            object_id=user.pk,
            actor=user,
            payload={"api_tokens_revoked": True, "token_generation": user.token_generation},
        )


def mfa_enrol_confirm(*, user: User, key_hex: str, code: str) -> TOTPDevice:
    """Confirm an enrolment: `code` must be the current code of the secret shown to the user, proving the app holds
    it. The device is created confirmed, with that code already spent; the user's API tokens, obtained without a
    second factor, are revoked. A user has at most one device: another enrolment needs the first removed."""
    if mfa_device(user) is not None:
        raise Conflict("An authenticator app is already enrolled for this account.")
    totp = TOTP(unhexlify(key_hex))
    totp.time = time.time()
    cleaned = "".join(code.split())
    if not (cleaned.isdigit() and totp.verify(int(cleaned), tolerance=1)):
        raise ValidationFailed("That is not the app's current code.", fields={"code": ["Incorrect code."]})
    with transaction.atomic():
        device = TOTPDevice.objects.create(
            user=user, name=DEVICE_NAME, key=key_hex, confirmed=True, last_t=totp.t(), drift=totp.drift
        )
        user.tokens_revoke()
        audit_record(
            action=AuditAction.MFA_ENROLLED,
            object_type="user",
            object_id=user.pk,
            actor=user,
            payload={"device": device.persistent_id, "api_tokens_revoked": True},
        )
    return device


def mfa_remove(*, user: User, password: str, code: str) -> None:
    """Remove the user's authenticator: needs the password and a current code, so a session left open is not
    enough. Refused while the user's role requires MFA."""
    if mfa_required(user):
        raise PermissionRefused("Your role signs in with a second factor; it cannot be removed.")
    device = mfa_device(user)
    if device is None:
        raise Conflict("No authenticator app is enrolled.")
    if not user.check_password(password) or not mfa_code_verify(device, code):
        audit_record_denied(
            action=AuditAction.MFA_REFUSED, object_type="user", object_id=user.pk, actor=user, reason="remove_refused"
        )
        raise ValidationFailed(
            "The password or the code was not accepted; nothing was removed.",
            fields={"code": ["Check the password and the code."]},
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        audit_record(action=AuditAction.MFA_REMOVED, object_type="user", object_id=user.pk, actor=user, payload={})
