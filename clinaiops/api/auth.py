"""API tokens that can be revoked: the claims that make them so, and the Bearer authentication that checks them.

Every token (simplejwt's signed JWTs) carries two claims of ours besides the user id:
- `gen`, the user's token generation (User.token_generation) when the sign-in happened. A password change, a
  deactivation or a lock-out bumps the generation, so every token issued before it is refused, access tokens
  included;
- `fam`, the id of the sign-in: every refresh token that rotation makes from one sign-in, and every access token
  they issue, share it. Signing out, or presenting a refresh token that was already used, revokes the family
  (core.RevokedTokenFamily).

Both are checked in the same query that fetches the user, which authentication makes anyway, so revocation costs
no query per request. The same query joins a patient's record and care team (the patient API's every operation
needs them: clinaiops.care.selectors.patient_for_user reuses them), so a reading costs one query before its own
work, not two. Failures answer 401 in the one error shape with a code the app can act on:
`token_expired` (refresh and retry), `token_invalid` (not one of our tokens) and `token_revoked` (sign in again).
"""

from __future__ import annotations

from enum import StrEnum

from django.db.models import Exists, OuterRef
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from clinaiops.core.errors import Unauthenticated
from clinaiops.core.models import RevokedTokenFamily, User

GENERATION_CLAIM = "gen"
FAMILY_CLAIM = "fam"
PATIENT_IDENTIFIER_FIELDS = ("patient__given_name", "patient__family_name", "patient__date_of_birth", "patient__mrn")


class TokenRefusal(StrEnum):
    """The codes of a refused token (core.errors.Unauthenticated, 401), each saying what the app should do next."""

    EXPIRED = "token_expired"  # refresh, then retry
    INVALID = "token_invalid"  # not one of our tokens: sign in
    REVOKED = "token_revoked"  # the sign-in has ended: sign in again


def token_invalid(message: str = "The token is not valid.", **fields: list[str]) -> Unauthenticated:
    return Unauthenticated(message, code=TokenRefusal.INVALID.value, fields=fields or None)


def token_revoked(message: str = "This sign-in has ended; sign in again.") -> Unauthenticated:
    return Unauthenticated(message, code=TokenRefusal.REVOKED.value)


class SigningRefreshToken(RefreshToken):
    """A refresh token whose blacklist membership is decided by the rotation itself, in one atomic insert
    (clinaiops.api.auth_services.token_pair_refresh), rather than by simplejwt's check-then-blacklist, which two
    concurrent refreshes with one token could both pass."""

    def check_blacklist(self) -> None:
        return None


def token_parse(raw: str | bytes, token_class: type[Token]) -> Token:
    """A verified token (signature, expiry, type), or Unauthenticated (TokenRefusal.EXPIRED / INVALID)."""
    try:
        token = token_class(raw)  # type: ignore[arg-type]
    except ExpiredTokenError as exc:
        raise Unauthenticated("The token has expired.", code=TokenRefusal.EXPIRED.value) from exc
    except TokenError as exc:
        raise token_invalid() from exc
    if GENERATION_CLAIM not in token or FAMILY_CLAIM not in token or jwt_settings.USER_ID_CLAIM not in token:
        # Tokens issued before revocation existed lack the claims; they cannot be revoked, so they are refused.
        raise token_invalid()
    return token


def token_user_get(token: Token) -> User:
    """The token's user, in one query that also says whether the token's family was revoked; TokenRefusal.REVOKED if the
    user is gone, inactive or locked, or the token is of an older generation or a revoked family."""
    revoked_family = RevokedTokenFamily.objects.filter(user_id=OuterRef("pk"), family=str(token[FAMILY_CLAIM]))
    user = (
        User.objects.annotate(token_family_revoked=Exists(revoked_family))
        # A LEFT JOIN: staff accounts have no patient, and the relation is then cached as absent (no query later).
        .select_related("patient__care_team")
        # The direct identifiers are encrypted and no API operation shows them: not decrypted on every request
        # (loaded on access, as any deferred field).
        .defer(*PATIENT_IDENTIFIER_FIELDS)
        .filter(pk=token[jwt_settings.USER_ID_CLAIM])
        .first()
    )
    if (
        user is None
        or not user.is_active
        or user.is_locked
        or user.token_generation != token[GENERATION_CLAIM]
        or user.token_family_revoked  # type: ignore[attr-defined]
    ):
        raise token_revoked()
    return user


def bearer_access_token(request: Request) -> tuple[User, Token] | None:
    """The user and access token of the request's `Authorization: Bearer …` header, None without one; raises
    Unauthenticated with a TokenRefusal code."""
    header = request.META.get(jwt_settings.AUTH_HEADER_NAME)
    if not header:
        return None
    parts = str(header).split()
    if not parts or parts[0] not in jwt_settings.AUTH_HEADER_TYPES:
        return None
    if len(parts) != 2:
        raise token_invalid()
    token = token_parse(parts[1], AccessToken)
    return token_user_get(token), token


class RevocableJWTAuthentication(JWTAuthentication):
    """simplejwt's Bearer authentication with the revocation checks above and one code per kind of failure."""

    def authenticate(self, request: Request) -> tuple[User, Token] | None:  # type: ignore[override]
        try:
            return bearer_access_token(request)
        except Unauthenticated as exc:
            # An AuthenticationFailed, so that DRF answers 401 with WWW-Authenticate (not 403).
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from exc


class RevocableJWTScheme(SimpleJWTScheme):  # type: ignore[no-untyped-call]
    """The OpenAPI security scheme of the Bearer tokens (drf-spectacular), as for simplejwt's own class."""

    target_class = "clinaiops.api.auth.RevocableJWTAuthentication"
