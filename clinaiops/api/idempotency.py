"""`Idempotency-Key` on the API's POSTs: a client that retries a POST whose answer it never saw (a dropped
connection, a timeout) sends the same key, and gets the first answer again instead of a second write.

- The same key with the same request (method, path, body as canonical JSON) replays the stored status and body,
  with `Idempotent-Replayed: true`.
- The same key with another request is 422 `idempotency_key_reused`: the client has a bug, and guessing which
  request it meant would be worse.
- Keys are per user and kept IDEMPOTENCY_KEY_HOURS (24 by default), then purged daily (tasks.py).
- Concurrent duplicates make one write: the claim row is inserted first, in the transaction that does the work.
  PostgreSQL holds a second insert of the same (user, key) on the unique constraint until the first transaction
  ends; it then fails, and the duplicate reads the committed answer.
- Only answers a view returns (2xx) are stored. A refusal (a raised ApplicationError, a validation error) deletes
  the claim, so a retry is judged afresh; whatever the refusal wrote outside its service's transaction (the audit of
  a refused reading) commits, exactly as it does without a key.
- The stored body is encrypted (IdempotencyRecord.response_body): a reading's answer holds its blood pressure.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from clinaiops.api.models import IdempotencyRecord
from clinaiops.core.errors import ApplicationError, Conflict, ValidationFailed

HEADER = "Idempotency-Key"
_KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as a UUID or any client's token is

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A key of 1 to 255 visible ASCII characters, new for each operation (a UUID). Resending the same request "
        "with the same key within 24 hours returns the first answer; the same key with another request is 422 "
        "`idempotency_key_reused`."
    ),
)


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    status = 422


def idempotency_retention() -> timedelta:
    return timedelta(hours=int(getattr(settings, "IDEMPOTENCY_KEY_HOURS", 24)))


def _request_hash(request: Request) -> str:
    data = request.data
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "body": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    body = json.loads(record.response_body) if record.response_body else None
    assert record.response_status is not None
    replayed = Response(body, status=record.response_status)
    replayed["Idempotent-Replayed"] = "true"
    return replayed


def _key(request: Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _KEY_PATTERN.fullmatch(raw):
        raise ValidationFailed(
            "The Idempotency-Key header is invalid.",
            fields={HEADER: ["Use 1 to 255 visible ASCII characters, for example a UUID."]},
            code="idempotency_key_invalid",
        )
    return raw


def idempotent_call(*, request: Request, owner_id: int | None, call: Callable[[], Response]) -> Response:
    """Run `call` (the view's work) once per (owner, key): claim the key, do the work and store its answer in one
    transaction; a committed claim answers a resend without running `call` again."""
    key = _key(request)
    if key is None or owner_id is None:
        return call()
    request_hash = _request_hash(request)
    failure: Exception | None = None
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: a lost race leaves the outer transaction usable
                record = IdempotencyRecord.objects.create(user_id=owner_id, key=key, request_hash=request_hash)
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(user_id=owner_id, key=key).first()
            if existing is None:  # claimed and given up meanwhile: the client may simply retry
                raise Conflict(
                    "A request with this Idempotency-Key was in progress; retry.", code="idempotency_key_in_progress"
                ) from None
            if existing.request_hash != request_hash:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used for another request; use a new key for each operation."
                ) from None
            return _replay(existing)
        try:
            response = call()
        except Exception as exc:
            failure = exc
            if not transaction.get_rollback():
                # Give the claim up but keep what the refusal wrote outside its own transaction (the audit of a
                # refused reading), as without a key; a broken transaction rolls back whole instead.
                try:
                    record.delete()
                except DatabaseError:
                    transaction.set_rollback(True)
        else:
            if response.status_code < 500:
                record.response_status = response.status_code
                record.response_body = (
                    JSONRenderer().render(response.data).decode() if response.data is not None else ""
                )
                record.save(update_fields=["response_status", "response_body"])
            else:
                record.delete()
    if failure is not None:
        raise failure
    return response


def idempotency_claim_stale() -> timedelta:
    return timedelta(minutes=int(getattr(settings, "IDEMPOTENCY_CLAIM_STALE_MINUTES", 5)))


def idempotent_call_in_steps(*, request: Request, owner_id: int | None, call: Callable[[], Response]) -> Response:
    """For work made of many transactions of its own (a batch of 500 readings, each ingested on its own): holding
    them all in the claim's transaction would hold the ledger's lock for seconds and stall every other writer. So
    the claim commits first, alone; the work runs; its answer is stored after.

    A concurrent duplicate finds a claim with no answer: 409 `idempotency_key_in_progress`, retry. A claim whose
    worker died mid-way (no answer after IDEMPOTENCY_CLAIM_STALE_MINUTES, 5 by default) is taken over by the next
    resend, with one conditional UPDATE, so only one resend takes it. Running the work again is safe only because
    each of its parts dedupes by itself (a reading on its natural key): use this only for such work."""
    key = _key(request)
    if key is None or owner_id is None:
        return call()
    request_hash = _request_hash(request)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(user_id=owner_id, key=key, request_hash=request_hash)
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(user_id=owner_id, key=key).first()
        if existing is not None and existing.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used for another request; use a new key for each operation."
            ) from None
        if existing is not None and existing.response_status is not None:
            return _replay(existing)
        now = timezone.now()
        taken_over = (
            existing is not None
            and IdempotencyRecord.objects.filter(
                pk=existing.pk, response_status__isnull=True, created_at__lt=now - idempotency_claim_stale()
            ).update(created_at=now)
            == 1
        )
        if not taken_over:
            raise Conflict(
                "A request with this Idempotency-Key is in progress; retry.", code="idempotency_key_in_progress"
            ) from None
        assert existing is not None
        record = existing
    try:
        response = call()
    except Exception:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()  # a retry is judged afresh
        raise
    if response.status_code < 500:
        record.response_status = response.status_code
        record.response_body = JSONRenderer().render(response.data).decode() if response.data is not None else ""
        record.save(update_fields=["response_status", "response_body"])
    else:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
    return response


def request_user_id(request: Request) -> int | None:
    return request.user.pk if request.user and request.user.is_authenticated else None


ViewMethod = TypeVar("ViewMethod", bound=Callable[..., Response])


def idempotent(
    owner: Callable[[Request], int | None] = request_user_id, *, in_steps: bool = False
) -> Callable[[ViewMethod], ViewMethod]:
    """Decorate a view's `post`: honour Idempotency-Key for the user `owner` names (the authenticated one).
    `in_steps`: the work is many transactions that each dedupe (idempotent_call_in_steps)."""
    run = idempotent_call_in_steps if in_steps else idempotent_call

    def decorate(method: ViewMethod) -> ViewMethod:
        @functools.wraps(method)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            return run(request=request, owner_id=owner(request), call=lambda: method(view, request, *args, **kwargs))

        return wrapper  # type: ignore[return-value]

    return decorate


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Delete the records older than the retention; how many went."""
    cutoff = (now or timezone.now()) - idempotency_retention()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
