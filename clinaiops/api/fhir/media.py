"""The FHIR media type (`application/fhir+json`, FHIR R4 §3.1.0.1.9): a parser for requests and a renderer for answers.

The parser is the API's bounded JSON parser (clinaiops/api/parsers.py) under FHIR's media type, so a Bundle nested
too deeply is refused the same way as any other body. FHIR views answer `application/fhir+json` whatever the Accept
header asks for (FhirContentNegotiation): a FHIR client reads JSON either way, and an error answered in another
format would not be an OperationOutcome.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from clinaiops.api.parsers import BoundedJSONParser

FHIR_JSON = "application/fhir+json"


class FhirJSONParser(BoundedJSONParser):
    """application/fhir+json, with the same bound on nesting as application/json."""

    media_type = FHIR_JSON


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir+json"


class FhirContentNegotiation(BaseContentNegotiation):
    """Parse by Content-Type as DRF does; always answer application/fhir+json (no 406 for an odd Accept header)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)
