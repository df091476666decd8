from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from clinaiops.api.errors import PayloadTooLarge


class BoundedJSONParser(JSONParser):
    """DRF reads the request stream directly, bypassing DATA_UPLOAD_MAX_MEMORY_SIZE, so enforce it here
    before anything is parsed."""

    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if declared > limit:
            raise PayloadTooLarge()
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLarge()
        import io

        return super().parse(io.BytesIO(data), media_type, parser_context)
