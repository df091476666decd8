"""The API's JSON parser: DRF's, with a bound on nesting.

json's C scanner recurses once per level, so a body nested about 1,000 levels deep raised RecursionError, which DRF
does not turn into a ParseError: a 500, even on the unauthenticated /auth/token/. A body that parses but is nested
a few hundred levels deep would recurse again later (validation, rendering, hashing). So the parser refuses both,
without recursing itself: RecursionError while parsing, and then an explicit-stack walk of what was parsed.
No request body of this API nests deeper than a few levels; MAX_JSON_DEPTH leaves room for FHIR Bundles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

MAX_JSON_DEPTH = 32


class JSONTooDeep(ParseError):
    default_detail = "The request body is nested too deeply."
    default_code = "json_too_deep"


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests containers deeper than `limit` (a bare scalar is depth 0), with an explicit stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    """application/json, refused (400 `json_too_deep`) when nested deeper than MAX_JSON_DEPTH."""

    max_depth = MAX_JSON_DEPTH

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = str((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        try:
            "".encode(encoding)  # an unknown charset, or one that is no text encoding (base64)
            text = stream.read().decode(encoding)
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError as exc:
            raise JSONTooDeep() from exc
        except (ValueError, LookupError, TypeError) as exc:  # ValueError includes UnicodeDecodeError
            # Never the decoder's message: it quotes the body (and DRF's quotes the charset).
            raise ParseError("The request body is not valid JSON.") from exc
        if json_depth_exceeds(data, self.max_depth):
            raise JSONTooDeep()
        return data
