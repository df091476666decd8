"""Per-request context (request id, client IP) that the audit ledger records without views passing it."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None


_EMPTY = RequestContext()  # frozen, so sharing it as the default is safe
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("request_context", default=_EMPTY)


def request_context_get() -> RequestContext:
    return _current.get()


def request_context_set(context: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(context)


def request_context_reset(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)
