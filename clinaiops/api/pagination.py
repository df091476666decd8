"""Limit/offset pages with strict parameters.

DRF's LimitOffsetPagination silently falls back to the default on a bad `limit` and passes any offset to the
database, where one of 2**63 or more overflowed into a 500. Here a `limit` or `offset` that is not a whole number in
range is a 400 naming the parameter; a page holds at most MAX_PAGE_SIZE items.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from clinaiops.core.errors import ValidationFailed

MAX_PAGE_SIZE = 200
# Far beyond any patient's record, and far inside every database's integer range.
MAX_OFFSET = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,12}")


def _bounded_int(request: Request, name: str, *, low: int, high: int, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # At most 12 digits are read, so no value of any length is ever converted in full.
    value = int(raw) if _DIGITS.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        raise ValidationFailed(
            "Some query parameters are invalid.",
            fields={name: [f"Use a whole number from {low} to {high}."]},
        )
    return value


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = MAX_PAGE_SIZE

    def get_limit(self, request: Request) -> int:
        return _bounded_int(request, self.limit_query_param, low=1, high=MAX_PAGE_SIZE, default=self.default_limit)

    def get_offset(self, request: Request) -> int:
        return _bounded_int(request, self.offset_query_param, low=0, high=MAX_OFFSET, default=0)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        # The bounds in the schema, so a generated client (and schemathesis) knows what is a 400.
        bounds = {self.limit_query_param: (1, MAX_PAGE_SIZE), self.offset_query_param: (0, MAX_OFFSET)}
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"] = {**parameter.get("schema", {}), "minimum": low, "maximum": high}
        return parameters
