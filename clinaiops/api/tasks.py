"""Thin Celery tasks of the API (STYLE.md): housekeeping of the token and Idempotency-Key records."""

from __future__ import annotations

from clinaiops.api.auth_services import tokens_expired_purge
from clinaiops.api.idempotency import idempotency_records_purge
from clinaiops.core.task_retry import durable_task


@durable_task(name="clinaiops.api.tasks.tokens_expired_purge")
def tokens_expired_purge_task() -> int:
    # Every sign-in and every rotation writes a row (simplejwt's OutstandingToken); without this they pile up.
    return tokens_expired_purge()


@durable_task(name="clinaiops.api.tasks.idempotency_keys_purge")
def idempotency_keys_purge_task() -> int:
    # Daily (settings CELERY_BEAT_SCHEDULE): keys older than IDEMPOTENCY_KEY_HOURS are no longer honoured.
    return idempotency_records_purge()
