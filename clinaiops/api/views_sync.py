"""Patient mobile API, offline sync and doses (issue 12): the batch of readings a phone kept while offline, and the
dose log with the regimen's schedule and adherence. One view per operation, as in views.py."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinaiops.api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from clinaiops.api.permissions import IsPatient, request_user
from clinaiops.api.query import query_filters
from clinaiops.api.readings import reading_answer, reading_input
from clinaiops.api.serializers import (
    MAX_BATCH_READINGS,
    READING_IN_EXAMPLE,
    BatchItemStatus,
    DoseFilterSerializer,
    DoseInSerializer,
    DoseOutSerializer,
    DoseScheduleSerializer,
    ReadingBatchInSerializer,
    ReadingBatchOutSerializer,
    ReadingInSerializer,
)
from clinaiops.care.models import DoseLog, Patient
from clinaiops.care.selectors import dose_list_for_patient, doses_recent, patient_for_user
from clinaiops.care.services import dose_log_store
from clinaiops.core.errors import ApplicationError
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.services.ingest import reading_ingest
from clinaiops.partnership.selectors import adherence_between

# --- Batch sync ---------------------------------------------------------------------------------------------


def _refused(index: int, code: str, message: str, fields: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "index": index,
        "status": BatchItemStatus.REFUSED,
        "reading": None,
        "error": {"code": code, "message": message, "fields": fields},
        "alerts": [],
        "guidance": None,
        "open_alerts": [],
    }


def _field_messages(errors: Any) -> dict[str, list[str]]:
    return {name: [str(message) for message in messages] for name, messages in dict(errors).items()}


BATCH_EXAMPLE_ANSWER = {
    "created": 1,
    "duplicate": 0,
    "refused": 1,
    "results": [
        {
            "index": 0,
            "status": "created",
            "reading": {
                "id": 4813,
                "taken_at": "2026-11-21T07:30:00-05:00",
                "systolic": 138,
                "diastolic": 86,
                "heart_rate": 72,
                "source": "cuff",
                "received_at": "2026-11-21T18:02:11Z",
                "updated_at": "2026-11-21T18:02:11Z",
            },
            "error": None,
            "alerts": [],
            "guidance": None,
            "open_alerts": [],
        },
        {
            "index": 1,
            "status": "refused",
            "reading": None,
            "error": {
                "code": "validation_failed",
                "message": "Some fields are invalid.",
                "fields": {"heart_rate": ["Heart rate must be between 25 and 250 beats per minute."]},
            },
            "alerts": [],
            "guidance": None,
            "open_alerts": [],
        },
    ],
}


class ReadingBatchView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        request=ReadingBatchInSerializer,
        responses={200: ReadingBatchOutSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            f"Up to {MAX_BATCH_READINGS} readings kept offline, each answered on its own: `created`, `duplicate` "
            "(already stored with the same time, source and values) or `refused` (with the error, in the API's error "
            "shape). The answer is 200 whenever the batch itself is well formed, whatever its readings' fates; only a "
            "malformed batch (not a list, empty, too long) is a 400. Each reading goes through the same ingest as a "
            "single POST, safety rules and audit included, in the order of its time taken."
        ),
        examples=[
            OpenApiExample(
                "Two readings kept offline",
                value={"readings": [READING_IN_EXAMPLE, {**READING_IN_EXAMPLE, "heart_rate": 400}]},
                request_only=True,
            ),
            OpenApiExample("One stored, one refused", value=BATCH_EXAMPLE_ANSWER, response_only=True),
        ],
    )
    @idempotent(in_steps=True)  # 500 transactions of their own, not one that holds the ledger's lock for seconds
    def post(self, request: Request) -> Response:
        incoming = ReadingBatchInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        items: list[Any] = incoming.validated_data["readings"]
        actor = request_user(request)
        patient = patient_for_user(user=actor)
        results: list[dict[str, Any] | None] = [None] * len(items)
        valid: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            reading = ReadingInSerializer(data=item)
            if reading.is_valid():
                valid.append((index, dict(reading.validated_data)))
            else:
                results[index] = _refused(
                    index, "validation_failed", "Some fields are invalid.", _field_messages(reading.errors)
                )
        # In the order taken, not sent: the hypotension rule counts the low readings before each one, so a day of
        # readings kept offline is judged as it would have been had they arrived one by one.
        valid.sort(key=lambda pair: pair[1]["taken_at"])
        for index, data in valid:
            # reading_ingest is its own transaction, with or without an Idempotency-Key: a refused reading stores
            # nothing but its audited refusal, and the others are unaffected.
            try:
                result = reading_ingest(actor=actor, patient=patient, data=reading_input(data))
            except ApplicationError as exc:
                results[index] = _refused(index, exc.code, exc.message, exc.fields)
                continue
            answer = reading_answer(result)
            alerts = {name: answer.pop(name) for name in ("alerts", "guidance", "open_alerts")}
            results[index] = {
                "index": index,
                "status": BatchItemStatus.CREATED if result.created else BatchItemStatus.DUPLICATE,
                "reading": answer,
                "error": None,
                **alerts,
            }
        counts = {str(choice): 0 for choice in BatchItemStatus}
        for item_result in results:
            assert item_result is not None
            counts[str(item_result["status"])] += 1
        return Response({**counts, "results": results}, status=status.HTTP_200_OK)


# --- Doses ----------------------------------------------------------------------------------------------------

SCHEDULE_DAYS = 14
ADHERENCE_WINDOWS = (14, 30)


def _dose_schedule(patient: Patient, today: date) -> dict[str, Any]:
    """The regimen's doses over the last SCHEDULE_DAYS days with what was logged, and adherence, computed as the care
    plan computes it (clinaiops.partnership.selectors.adherence_between: taken over logged days)."""
    logged = {dose.day: dose.taken for dose in doses_recent(patient=patient, end=today, days=SCHEDULE_DAYS)}
    scheduled = [
        {"day": day, "doses": 1, "taken": logged.get(day)}
        for day in (today - timedelta(days=n) for n in range(SCHEDULE_DAYS))
    ]
    adherence = []
    for days in ADHERENCE_WINDOWS:
        window = adherence_between(patient, start=today - timedelta(days=days - 1), end=today)
        adherence.append({"days": days, "logged": window.logged, "taken": window.taken, "percent": window.percent})
    return {
        "current_step": patient.current_step,
        "regimen": regimen_label(patient.current_step),
        "frequency": "daily",
        "scheduled": scheduled,
        "adherence": adherence,
    }


class DoseListCreateView(generics.ListAPIView[DoseLog]):
    permission_classes = [IsPatient]
    serializer_class = DoseOutSerializer

    def get_queryset(self) -> Any:
        filters = query_filters(DoseFilterSerializer, self.request)
        return dose_list_for_patient(
            patient_id=patient_for_user(user=request_user(self.request)).pk,
            day_from=filters.get("from"),
            day_to=filters.get("to"),
        )

    @extend_schema(
        parameters=[DoseFilterSerializer],
        description="The patient's dose log, newest day first; `from`/`to` bound the day (inclusive).",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=DoseInSerializer,
        responses={201: DoseOutSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            "Log whether the day's dose was taken. One entry a day: logging a day again corrects it. The day may not "
            "be in the future (judged at UTC+14, where the date changes first) nor more than a year ago."
        ),
        examples=[OpenApiExample("Taken today", value={"day": "2026-11-21", "taken": True}, request_only=True)],
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        incoming = DoseInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        dose = dose_log_store(
            patient=patient_for_user(user=request_user(request)),
            day=incoming.validated_data["day"],
            taken=incoming.validated_data["taken"],
            actor=request_user(request),
        )
        return Response(DoseOutSerializer(dose).data, status=status.HTTP_201_CREATED)


class DoseScheduleView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        responses=DoseScheduleSerializer,
        description=(
            "The current regimen (every step is taken once a day), the last 14 days' scheduled doses with what was "
            "logged, and adherence over 14 and 30 days: the share of logged days with the dose taken."
        ),
    )
    def get(self, request: Request) -> Response:
        schedule = _dose_schedule(patient_for_user(user=request_user(request)), timezone.localdate())
        return Response(DoseScheduleSerializer(schedule).data)
