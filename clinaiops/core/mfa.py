"""Second factor (TOTP, RFC 6238, with django-otp) for sign-in: who needs it and whether a code is right.

The signing roles (clinician, clinical safety officer, ML engineer) put their name to clinical decisions and model
promotions, so MFA is required for them where MFA_REQUIRED_FOR_SIGNING_ROLES is on (the default in production);
anyone else who enrolled a device is asked for a code too. The writes (enrolment, removal) and their audit events
live with the portal, which is where a person enrols (clinaiops.portal.account).

django-otp keeps the replay guard (a code is accepted once: `last_t`) and the throttle (each failure doubles the
wait before the next try, OTP_TOTP_THROTTLE_FACTOR seconds at first), which bound guessing of a 6-digit code.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinaiops.core.auth import seconds_until
from clinaiops.core.models import Role, User

SIGNING_ROLES = frozenset({Role.CLINICIAN, Role.SAFETY_OFFICER, Role.ML_ENGINEER})
DEVICE_NAME = "authenticator app"


def mfa_required(user: User) -> bool:
    """Whether `user` must not get in without a second factor, enrolled or not."""
    return bool(settings.MFA_REQUIRED_FOR_SIGNING_ROLES) and user.role in SIGNING_ROLES


def mfa_device(user: User) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if they enrolled one."""
    device: TOTPDevice | None = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    return device


def mfa_applies(user: User) -> bool:
    """Whether sign-in must ask `user` for a code (or, lacking a device, make them enrol one)."""
    return mfa_required(user) or mfa_device(user) is not None


def mfa_code_verify(device: TOTPDevice, code: str) -> bool:
    """Whether `code` is the device's current code and was not used before. The row is locked for the check, so
    two requests cannot both spend one code; a refusal counts towards django-otp's throttle, and nothing is
    checked while the throttle says wait."""
    code = "".join(code.split())
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not locked.verify_is_allowed()[0]:
            verified = False
        elif code.isdigit() and len(code) == locked.digits:
            verified = bool(locked.verify_token(code))
        else:
            # Still a failed attempt: guessing pays the throttle whatever the shape of the guess.
            locked.throttle_increment(commit=True)
            verified = False
    device.refresh_from_db()
    return verified


def mfa_retry_after(device: TOTPDevice) -> int | None:
    """Seconds before django-otp's throttle lets the next code be tried, or None if it would be tried now."""
    allowed, details = device.verify_is_allowed()
    if allowed:
        return None
    locked_until = (details or {}).get("locked_until")
    if locked_until is None:
        return 1
    return max(1, seconds_until(locked_until))
