"""Token endpoints of the patient API: sign in, rotate, sign out (services in clinaiops/api/auth_services.py)."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, Token

from clinaiops.api.auth import SigningRefreshToken, bearer_access_token, token_parse
from clinaiops.api.auth_services import (
    ClientAccessToken,
    TokenPair,
    client_sign_in,
    sign_in,
    sign_out,
    token_pair_refresh,
)
from clinaiops.api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from clinaiops.core.errors import Unauthenticated
from clinaiops.core.sign_in_throttle import SignInRateThrottle


class SignInSerializer(serializers.Serializer[None]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=512, trim_whitespace=False, write_only=True)
    otp = serializers.CharField(max_length=16, required=False, allow_blank=True, write_only=True)


CLIENT_CREDENTIALS = "client_credentials"


class ClientCredentialsSerializer(serializers.Serializer[None]):
    """A device gateway's sign-in (OAuth 2.0 client-credentials grant): the id and secret that
    `manage.py create_device_gateway` printed."""

    grant_type = serializers.ChoiceField(choices=[CLIENT_CREDENTIALS])
    client_id = serializers.CharField(max_length=150)
    client_secret = serializers.CharField(max_length=512, trim_whitespace=False, write_only=True)


class ClientAccessTokenSerializer(serializers.Serializer[ClientAccessToken]):
    access = serializers.CharField()
    access_token = serializers.CharField(help_text="The same token, under its OAuth 2.0 name.")
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds; then sign in again (there is no refresh token).")


class RefreshSerializer(serializers.Serializer[None]):
    refresh = serializers.CharField(max_length=4096)


class SignOutSerializer(serializers.Serializer[None]):
    refresh = serializers.CharField(max_length=4096, required=False, allow_blank=True)


class TokenPairSerializer(serializers.Serializer[TokenPair]):
    access = serializers.CharField()
    refresh = serializers.CharField()


def _pair(pair: TokenPair) -> Response:
    return Response({"access": pair.access, "refresh": pair.refresh})


class TokenView(APIView):
    """Sign in with username and password (and `otp`, the authenticator's code, where MFA applies); a device gateway
    with `grant_type: client_credentials`, its `client_id` and `client_secret`, and gets an access token only."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [SignInRateThrottle]

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="SignInRequest",
            serializers=[SignInSerializer, ClientCredentialsSerializer],
            resource_type_field_name=None,
        ),
        responses={
            200: PolymorphicProxySerializer(
                component_name="SignInResponse",
                serializers=[TokenPairSerializer, ClientAccessTokenSerializer],
                resource_type_field_name=None,
            )
        },
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.data, dict) and request.data.get("grant_type") == CLIENT_CREDENTIALS:
            return self._client_credentials(request)
        data = SignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        return _pair(
            sign_in(
                request=request, username=values["username"], password=values["password"], otp=values.get("otp", "")
            )
        )

    def _client_credentials(self, request: Request) -> Response:
        data = ClientCredentialsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        token = client_sign_in(request=request, client_id=values["client_id"], client_secret=values["client_secret"])
        return Response(
            {
                "access": token.access,
                "access_token": token.access,
                "token_type": "Bearer",
                "expires_in": token.expires_in,
            }
        )


class TokenRefreshView(APIView):
    """Spend a refresh token for a new pair; a spent one presented again ends the sign-in."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _pair(token_pair_refresh(data.validated_data["refresh"]))


def sign_out_owner(request: Request) -> int | None:
    """Whose Idempotency-Key a sign-out uses: the user of the presented token, checked for signature and expiry but
    not for revocation, so that a retried sign-out (its sign-in already ended) replays the first answer."""
    refresh = request.data.get("refresh") if isinstance(request.data, dict) else None
    header = str(request.META.get(jwt_settings.AUTH_HEADER_NAME) or "").split()
    token: Token
    try:
        if isinstance(refresh, str) and refresh:
            token = token_parse(refresh, SigningRefreshToken)
        elif len(header) == 2 and header[0] in jwt_settings.AUTH_HEADER_TYPES:
            token = token_parse(header[1], AccessToken)
        else:
            return None
        return int(token[jwt_settings.USER_ID_CLAIM])
    except (Unauthenticated, ValueError, TypeError):
        return None


class SignOutView(APIView):
    """End the sign-in of the refresh token in the body (or of the Bearer access token): 204. The header is read
    only without a body token, so an app whose access token expired can still sign out with its refresh token."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(request=SignOutSerializer, responses={204: None}, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @idempotent(owner=sign_out_owner)
    def post(self, request: Request) -> Response:
        data = SignOutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refresh = data.validated_data.get("refresh") or None
        bearer = None if refresh else bearer_access_token(request)
        sign_out(refresh_raw=refresh, access=bearer[1] if bearer else None)
        return Response(status=status.HTTP_204_NO_CONTENT)
