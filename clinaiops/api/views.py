"""Patient mobile API. One view per operation: validate → service/selector → serialize; no view queries."""

from __future__ import annotations

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
    READING_IN_EXAMPLE,
    AccessLogSerializer,
    MeSerializer,
    ReadingFilterSerializer,
    ReadingIngestedSerializer,
    ReadingInSerializer,
    ReadingOutSerializer,
    RecommendationFilterSerializer,
    RecommendationSerializer,
    RespondSerializer,
    SymptomFilterSerializer,
    SymptomInSerializer,
    SymptomOutSerializer,
    SymptomReportedSerializer,
    alerts_answer,
)
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record_denied
from clinaiops.care.models import Reading, Symptom
from clinaiops.care.selectors import (
    patient_for_user,
    reading_list_for_patient,
    symptom_list_for_patient,
)
from clinaiops.core.errors import NotFound
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.models import Recommendation
from clinaiops.loops.selectors import (
    recommendation_get_visible,
    recommendation_list_changed_since,
    recommendation_list_visible,
)
from clinaiops.loops.services.ingest import reading_ingest, symptom_ingest
from clinaiops.loops.services.respond import recommendation_respond
from governance.accounting import access_accounting

CRISIS_ANSWER_EXAMPLE = {
    "id": 4812,
    "taken_at": "2026-11-21T07:30:00-05:00",
    "systolic": 186,
    "diastolic": 112,
    "heart_rate": 88,
    "source": "cuff",
    "received_at": "2026-11-21T12:30:04Z",
    "updated_at": "2026-11-21T12:30:04Z",
    "alerts": ["hypertensive_crisis"],
    "guidance": "Your blood pressure is very high. Sit quietly for 5 minutes and measure again. ...",
    "open_alerts": [
        {
            "id": 77,
            "kind": "hypertensive_crisis",
            "priority": "P0",
            "status": "open",
            "opened_at": "2026-11-21T12:30:04Z",
            "acknowledged_at": None,
            "guidance": "Your blood pressure is very high. Sit quietly for 5 minutes and measure again. ...",
        }
    ],
}


class ReadingListCreateView(generics.ListAPIView[Reading]):
    permission_classes = [IsPatient]
    serializer_class = ReadingOutSerializer

    def get_queryset(self) -> Any:
        filters = query_filters(ReadingFilterSerializer, self.request)
        return reading_list_for_patient(
            patient_id=patient_for_user(user=request_user(self.request)).pk,
            since=filters.get("since"),
            taken_from=filters.get("from"),
            taken_to=filters.get("to"),
        )

    @extend_schema(
        parameters=[ReadingFilterSerializer],
        description=(
            "The patient's readings, newest taken first. `from`/`to` bound the time taken (inclusive). `since` is "
            "incremental sync: readings stored or changed at or after it, oldest change first."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ReadingInSerializer,
        responses={201: ReadingIngestedSerializer, 200: ReadingIngestedSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            "Store one reading; 201 when new, 200 when the same reading (time, source, values) was already stored. "
            "`alerts` names every safety alert of this reading that is open, newly or already, with `guidance`."
        ),
        examples=[
            OpenApiExample("A home cuff reading", value=READING_IN_EXAMPLE, request_only=True),
            OpenApiExample(
                "A crisis reading's answer", value=CRISIS_ANSWER_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        incoming = ReadingInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        patient = patient_for_user(user=request_user(request))
        result = reading_ingest(
            actor=request_user(request), patient=patient, data=reading_input(incoming.validated_data)
        )
        return Response(
            reading_answer(result), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )


class RecommendationListView(generics.ListAPIView[Recommendation]):
    permission_classes = [IsPatient]
    serializer_class = RecommendationSerializer

    def get_queryset(self) -> Any:
        since = query_filters(RecommendationFilterSerializer, self.request).get("updated_since")
        if since is not None:
            return recommendation_list_changed_since(user=request_user(self.request), since=since)
        return recommendation_list_visible(user=request_user(self.request))

    @extend_schema(parameters=[RecommendationFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


def _own_recommendation(request: Request, pk: int) -> Recommendation:
    """Another patient's recommendation answers 404, and the attempt is audited."""
    try:
        return recommendation_get_visible(user=request_user(request), recommendation_id=pk)
    except NotFound:
        audit_record_denied(
            action=AuditAction.ACCESS_DENIED, object_type="recommendation", object_id=pk, actor=request_user(request),
            reason="not_own_record",
        )  # fmt: skip
        raise


class RecommendationDetailView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(responses=RecommendationSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(RecommendationSerializer(_own_recommendation(request, pk)).data)


class RecommendationRespondView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        request=RespondSerializer, responses=RecommendationSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER]
    )
    @idempotent()
    def post(self, request: Request, pk: int) -> Response:
        incoming = RespondSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        rec = _own_recommendation(request, pk)
        recommendation_respond(
            actor=request_user(request), recommendation=rec, response=incoming.validated_data["response"]
        )
        rec = recommendation_get_visible(user=request_user(request), recommendation_id=pk)
        return Response(RecommendationSerializer(rec).data)


class SymptomListCreateView(generics.ListAPIView[Symptom]):
    permission_classes = [IsPatient]
    serializer_class = SymptomOutSerializer

    def get_queryset(self) -> Any:
        filters = query_filters(SymptomFilterSerializer, self.request)
        return symptom_list_for_patient(
            patient_id=patient_for_user(user=request_user(self.request)).pk,
            reported_from=filters.get("from"),
            reported_to=filters.get("to"),
        )

    @extend_schema(
        parameters=[SymptomFilterSerializer],
        description="The patient's symptoms, newest first; `from`/`to` bound the time reported (inclusive).",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=SymptomInSerializer,
        responses={201: SymptomReportedSerializer, 200: SymptomReportedSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            "Report a symptom; 201 when new, 200 when the same symptom at the same time was already reported. "
            "Dizziness or fainting with a low reading in the window is sustained hypotension: `alerts` and "
            "`guidance` say so, whether this report opened the alert or it was already open."
        ),
        examples=[
            OpenApiExample(
                "Dizziness, with a note",
                value={
                    "kind": "dizziness",
                    "severity": "moderate",
                    "reported_at": "2026-11-21T08:10:00-05:00",
                    "note": "Dizzy when I stood up after breakfast.",
                },
                request_only=True,
            )
        ],
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        incoming = SymptomInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        result = symptom_ingest(
            actor=request_user(request),
            patient=patient_for_user(user=request_user(request)),
            kind=data["kind"],
            reported_at=data.get("reported_at") or timezone.now(),
            note=data.get("note", ""),
            severity=data.get("severity", ""),
        )
        body = {**SymptomOutSerializer(result.symptom).data, **alerts_answer(result.open_alerts)}
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class MeView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        patient = patient_for_user(user=request_user(request))
        me = {
            "code": patient.code,
            "target": {"systolic": patient.target_sbp, "diastolic": patient.target_dbp},
            "current_step": patient.current_step,
            "regimen": regimen_label(patient.current_step),
            "care_team": patient.care_team.name,
        }
        return Response(MeSerializer(me).data)


class AccessLogView(APIView):
    """The patient's own accounting: who viewed, accessed in an emergency or disclosed their record, and why."""

    permission_classes = [IsPatient]

    @extend_schema(responses=AccessLogSerializer)
    def get(self, request: Request) -> Response:
        patient = patient_for_user(user=request_user(request))
        return Response(AccessLogSerializer({"results": access_accounting(patient=patient)}).data)
