"""API sign-in, token rotation and sign-out (the writes behind clinaiops/api/auth_views.py).

People sign in with a password (and a second factor where it applies) and get a refresh and an access token. A
device gateway (Role.DEVICE_GATEWAY, a hospital's service account; `manage.py create_device_gateway`) signs in
client-credentials style (OAuth 2.0, RFC 6749 §4.4): its client id is its username and its secret its password, so
the secret is stored hashed and the sign-in goes through the same django-axes lock-out as people's. It gets an
access token only, with the same revocation claims; when it expires, the gateway signs in again.

Every revocation is written in the audit ledger in the same transaction as the change: a sign-out
(`auth.signed_out`) and a refused reuse of a refresh token (`auth.token_reuse_refused`, which revokes the family).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from clinaiops.api.auth import (
    FAMILY_CLAIM,
    GENERATION_CLAIM,
    SigningRefreshToken,
    token_invalid,
    token_parse,
    token_revoked,
    token_user_get,
)
from clinaiops.audit.models import AuditAction, AuditOutcome
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.core.auth import AccountLocked, sign_in_lock_retry_after
from clinaiops.core.errors import Unauthenticated
from clinaiops.core.mfa import mfa_applies, mfa_code_verify, mfa_device, mfa_retry_after
from clinaiops.core.models import RevokedTokenFamily, Role, User

# Refused sign-ins answer 401 (core.errors.Unauthenticated) with one of these codes.
INVALID_CREDENTIALS = "invalid_credentials"
MFA_REQUIRED = "mfa_required"  # the account signs in with a second factor: send the app's current code as `otp`
MFA_INVALID = "mfa_invalid"


def _mfa_refused(retry_after: int | None) -> Unauthenticated:
    refusal = Unauthenticated(
        "The code was not accepted; nothing was issued.",
        code=MFA_INVALID,
        fields={"otp": ["Incorrect or already used code."]},
    )
    refusal.retry_after = retry_after
    return refusal


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


@dataclass(frozen=True)
class ClientAccessToken:
    """A device gateway's access token and its lifetime in seconds (no refresh token: it signs in again)."""

    access: str
    expires_in: int


def _outstanding_record(refresh: Token, user: User) -> None:
    OutstandingToken.objects.create(
        user=user,
        jti=refresh[jwt_settings.JTI_CLAIM],
        token=str(refresh),
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )


def _sign_in_start(user: User) -> SigningRefreshToken:
    """The refresh token of a new sign-in: a family of its own, the user's current generation."""
    refresh = SigningRefreshToken()
    refresh[jwt_settings.USER_ID_CLAIM] = str(user.pk)
    refresh[GENERATION_CLAIM] = user.token_generation
    refresh[FAMILY_CLAIM] = refresh[jwt_settings.JTI_CLAIM]
    _outstanding_record(refresh, user)
    return refresh


def token_pair_issue(user: User) -> TokenPair:
    """A new sign-in: a refresh token that starts a family of its own, and an access token of that family."""
    refresh = _sign_in_start(user)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def access_token_issue(user: User, *, lifetime: timedelta | None = None) -> str:
    """An access token of a new sign-in, for tools that act as the mobile app without its password (the benches).
    Like every token it carries the user's generation and a family, so it can be revoked; simplejwt's own
    `AccessToken.for_user` lacks both and is refused."""
    with transaction.atomic():
        refresh = _sign_in_start(user)
    access = refresh.access_token
    if lifetime is not None:
        access.set_exp(lifetime=lifetime)
    return str(access)


def sign_in(*, request: Any, username: str, password: str, otp: str) -> TokenPair:
    """Check the credentials (and the second factor where it applies) and start a sign-in.

    A lock-out (django-axes after repeated failures from this address, or a signature lock-out when the password
    was right) answers AccountLocked with the wait, distinct from a wrong password."""
    user = _credentials_check(request=request, username=username, password=password)
    if user.role == Role.DEVICE_GATEWAY:
        # A service account has no refresh token to keep safe: it signs in each time with its secret.
        raise Unauthenticated("A device gateway signs in with grant_type client_credentials.", code=INVALID_CREDENTIALS)
    if mfa_applies(user):
        device = mfa_device(user)
        if device is None:
            # Required but not enrolled: enrolment happens in the portal, where the QR code can be shown.
            raise Unauthenticated(
                "Enrol an authenticator app in the portal (Account) before signing in here.", code=MFA_REQUIRED
            )
        if not otp:
            raise Unauthenticated(
                "This account signs in with a code from its authenticator app: send it as otp.", code=MFA_REQUIRED
            )
        if not mfa_code_verify(device, otp):
            audit_record_denied(
                action=AuditAction.MFA_REFUSED, object_type="user", object_id=user.pk, actor=user, reason="bad_code"
            )
            raise _mfa_refused(mfa_retry_after(device))
    with transaction.atomic():
        return token_pair_issue(user)


def _credentials_check(*, request: Any, username: str, password: str) -> User:
    """The active, unlocked user with these credentials (through django-axes), or AccountLocked / Unauthenticated."""
    user = authenticate(request=request, username=username, password=password)
    if user is None:
        retry_after = sign_in_lock_retry_after(request)
        if retry_after is not None:
            raise AccountLocked(retry_after=retry_after)
        raise Unauthenticated("No active account was found with these credentials.", code=INVALID_CREDENTIALS)
    assert isinstance(user, User)
    return user


def client_sign_in(*, request: Any, client_id: str, client_secret: str) -> ClientAccessToken:
    """A device gateway's sign-in (the client-credentials grant): an access token of a new sign-in family, so that
    a sign-out, a new secret (`set_password`) or a deactivation revokes it. Any other account is refused exactly as
    a wrong secret is."""
    user = _credentials_check(request=request, username=client_id, password=client_secret)
    if user.role != Role.DEVICE_GATEWAY:
        raise Unauthenticated("No active account was found with these credentials.", code=INVALID_CREDENTIALS)
    access = access_token_issue(user)
    return ClientAccessToken(access=access, expires_in=int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()))


def token_pair_refresh(raw: str) -> TokenPair:
    """Rotate a refresh token: the one given is spent (blacklisted) and a new pair of the same family is issued.

    The new refresh token keeps the expiry of the sign-in, so rotation never extends it. A refresh token that was
    already spent is the sign of a copy in someone else's hands (RFC 6819 §5.2.2.3; OAuth 2.0 Security BCP
    §4.14): the whole family is revoked, the legitimate app's newest tokens with it, and the refusal is audited."""
    refresh = token_parse(raw, SigningRefreshToken)
    user = token_user_get(refresh)
    jti = refresh[jwt_settings.JTI_CLAIM]
    try:
        with transaction.atomic():
            outstanding = OutstandingToken.objects.filter(jti=jti).first()
            if outstanding is None:
                raise token_invalid()
            # The unique one-to-one row is the lock: of two concurrent refreshes with one token, one insert fails.
            BlacklistedToken.objects.create(token=outstanding)
            rotated = SigningRefreshToken()
            for claim in (jwt_settings.USER_ID_CLAIM, GENERATION_CLAIM, FAMILY_CLAIM, "exp"):
                rotated[claim] = refresh[claim]
            _outstanding_record(rotated, user)
            return TokenPair(access=str(rotated.access_token), refresh=str(rotated))
    except IntegrityError:
        pass
    _family_revoke(user=user, token=refresh, reason=RevokedTokenFamily.Reason.REFRESH_REUSED)
    raise token_revoked("This refresh token was already used; the sign-in has been ended. Sign in again.")


def _family_revoke(*, user: User, token: Token, reason: str) -> bool:
    """Revoke the token's family (its refresh tokens and access tokens) and audit it, once; False if it already
    was revoked. Expired revocation rows are purged on the way: no token of theirs can be valid any more."""
    family = str(token[FAMILY_CLAIM])
    if token.token_type == SigningRefreshToken.token_type:
        # Rotation keeps the sign-in's expiry, so a refresh token's is the family's.
        expires_at: datetime = datetime_from_epoch(token["exp"])
    else:
        # An access token expires sooner than its family; no family outlives a refresh token's lifetime.
        expires_at = timezone.now() + jwt_settings.REFRESH_TOKEN_LIFETIME
    denied = reason == RevokedTokenFamily.Reason.REFRESH_REUSED
    with transaction.atomic():
        RevokedTokenFamily.objects.filter(expires_at__lt=timezone.now()).delete()
        _, created = RevokedTokenFamily.objects.get_or_create(
            family=family, defaults={"user": user, "reason": reason, "expires_at": expires_at}
        )
        if created:
            audit_record(
                action=AuditAction.TOKEN_REUSE_REFUSED if denied else AuditAction.SIGNED_OUT,
                object_type="user",
                object_id=user.pk,
                actor=user,
                outcome=AuditOutcome.DENIED if denied else AuditOutcome.SUCCESS,
                payload={"token_family": family},
            )
    return created


def sign_out(*, refresh_raw: str | None, access: Token | None) -> None:
    """End the sign-in of the token given: the refresh token in the body, or else the access token the request
    was authenticated with. Its family is revoked, so the refresh token and every access token of the sign-in are
    refused from now on; signing out twice is no error."""
    if refresh_raw:
        token = token_parse(refresh_raw, SigningRefreshToken)
    elif access is not None:
        token = access
    else:
        raise token_invalid("Send the refresh token to sign out.", refresh=["This field is required."])
    user = User.objects.filter(pk=token[jwt_settings.USER_ID_CLAIM]).first()
    if user is None:
        return
    with transaction.atomic():
        if refresh_raw:
            outstanding = OutstandingToken.objects.filter(jti=token[jwt_settings.JTI_CLAIM]).first()
            if outstanding is not None:
                BlacklistedToken.objects.get_or_create(token=outstanding)
        _family_revoke(user=user, token=token, reason=RevokedTokenFamily.Reason.SIGNED_OUT)


def tokens_expired_purge() -> int:
    """Delete the records of refresh tokens that have expired (their blacklist entries go with them) and of revoked
    families no token of which can still be valid; the number of token records deleted. Housekeeping, not a
    revocation: an expired token is refused by its signature's `exp` whether or not its record exists."""
    now = timezone.now()
    with transaction.atomic():
        RevokedTokenFamily.objects.filter(expires_at__lt=now).delete()
        deleted, _ = OutstandingToken.objects.filter(expires_at__lt=now).delete()
    return deleted
