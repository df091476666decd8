"""A list's query parameters, validated by a serializer: a bad one is a 400 naming it, its value never repeated."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from clinaiops.core.errors import ValidationFailed

INVALID = "Some query parameters are invalid."


def query_filters(serializer_class: type[Any], request: Request) -> dict[str, Any]:
    """The validated filters. DRF reads an empty query parameter as an absent one; here `?from=` is as much a
    mistake as `?from=x`."""
    incoming = serializer_class(data=request.query_params)
    blank = sorted(name for name in incoming.fields if request.query_params.get(name) == "")
    if blank:
        raise ValidationFailed(INVALID, fields={name: ["Must not be empty."] for name in blank})
    if not incoming.is_valid():
        fields = {name: [str(message) for message in messages] for name, messages in incoming.errors.items()}
        raise ValidationFailed(INVALID, fields=fields)
    return dict(incoming.validated_data)
