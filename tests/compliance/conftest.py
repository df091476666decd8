"""Fixtures for the compliance exports: a decided, acknowledged recommendation, and jobs run to the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.respond import recommendation_respond
from clinaiops.loops.services.review import review_decide
from compliance.models import Export
from compliance.services import export_request, export_run
from tests.factories import PASSWORD


@pytest.fixture
def decided(pending_recommendation: Recommendation, clinician: User, patient: Patient) -> Recommendation:
    """A major proposal the assigned clinician accepted (signed) and the patient acknowledged, changing the regimen."""
    rec = pending_recommendation
    review_decide(
        actor=clinician,
        recommendation=rec,
        outcome="accepted",
        reason="Readings high on every day this week",
        password=PASSWORD,
    )
    rec.refresh_from_db()
    recommendation_respond(actor=patient.user, recommendation=rec, response="acknowledge")
    rec.refresh_from_db()
    return rec


@pytest.fixture
def run_export(django_capture_on_commit_callbacks: Any) -> Callable[..., Export]:
    """Request an export and run its job to the end, as the eager Celery worker does after the commit."""

    def run(
        *, actor: User, kind: str, parameters: dict[str, str] | None = None, formats: list[str], **kw: Any
    ) -> Export:
        with django_capture_on_commit_callbacks(execute=True):
            export = export_request(actor=actor, kind=kind, parameters=parameters or {}, formats=formats, **kw)
        export.refresh_from_db()
        return export

    return run


@pytest.fixture
def run_again() -> Callable[[Export], Export]:
    def again(export: Export) -> Export:
        return export_run(export_id=export.pk)

    return again


def streamed(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def rogue_dba_sql(statement: str, params: list[object] | None = None) -> None:
    """What a DBA can do: switch the ledger's append-only triggers off and edit it behind the services' back."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER USER")
        cursor.execute(statement, params or [])
