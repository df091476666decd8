"""Patient mobile API. One view per operation: validate → service/selector → serialize; no view queries."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinaiops.api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from clinaiops.api.permissions import IsPatient
from clinaiops.api.serializers import (
    ReadingInSerializer,
    ReadingOutSerializer,
    RecommendationSerializer,
    RespondSerializer,
    SymptomInSerializer,
)
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record_denied
from clinaiops.care.models import Reading
from clinaiops.care.selectors import patient_for_user, reading_list_own
from clinaiops.care.services import ReadingInput
from clinaiops.core.errors import NotFound
from clinaiops.core.models import User
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.models import Recommendation
from clinaiops.loops.selectors import recommendation_get_visible, recommendation_list_visible
from clinaiops.loops.services.ingest import reading_ingest, symptom_report
from clinaiops.loops.services.respond import recommendation_respond
from governance.accounting import access_accounting


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


class ReadingListCreateView(generics.ListAPIView[Reading]):
    permission_classes = [IsPatient]
    serializer_class = ReadingOutSerializer

    def get_queryset(self) -> Any:
        return reading_list_own(user=_user(self.request))

    @extend_schema(
        request=ReadingInSerializer,
        responses={201: ReadingOutSerializer, 200: ReadingOutSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        incoming = ReadingInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        patient = patient_for_user(user=_user(request))
        result = reading_ingest(
            actor=_user(request),
            patient=patient,
            data=ReadingInput(
                taken_at=data["taken_at"],
                systolic=data["systolic"],
                diastolic=data["diastolic"],
                heart_rate=data.get("heart_rate"),
                source=data["source"],
            ),
        )
        body = dict(ReadingOutSerializer(result.reading).data)
        body["alerts"] = [alert.kind for alert in result.alerts]
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class RecommendationListView(generics.ListAPIView[Recommendation]):
    permission_classes = [IsPatient]
    serializer_class = RecommendationSerializer

    def get_queryset(self) -> Any:
        return recommendation_list_visible(user=_user(self.request))


def _own_recommendation(request: Request, pk: int) -> Recommendation:
    """Another patient's recommendation answers 404, and the attempt is audited."""
    try:
        return recommendation_get_visible(user=_user(request), recommendation_id=pk)
    except NotFound:
        audit_record_denied(
            action=AuditAction.ACCESS_DENIED, object_type="recommendation", object_id=pk, actor=_user(request),
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
        recommendation_respond(actor=_user(request), recommendation=rec, response=incoming.validated_data["response"])
        rec = recommendation_get_visible(user=_user(request), recommendation_id=pk)
        return Response(RecommendationSerializer(rec).data)


class SymptomCreateView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(request=SymptomInSerializer, responses={201: None}, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @idempotent()
    def post(self, request: Request) -> Response:
        incoming = SymptomInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        patient = patient_for_user(user=_user(request))
        alerts = symptom_report(
            actor=_user(request),
            patient=patient,
            kind=incoming.validated_data["kind"],
            reported_at=incoming.validated_data.get("reported_at") or timezone.now(),
        )
        return Response({"kind": incoming.validated_data["kind"], "alerts": [a.kind for a in alerts]}, status=201)


class MeView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(responses=None)
    def get(self, request: Request) -> Response:
        patient = patient_for_user(user=_user(request))
        return Response(
            {
                "code": patient.code,
                "target": {"systolic": patient.target_sbp, "diastolic": patient.target_dbp},
                "current_step": patient.current_step,
                "regimen": regimen_label(patient.current_step),
                "care_team": patient.care_team.name,
            }
        )


class AccessLogView(APIView):
    """The patient's own accounting: who viewed, accessed in an emergency or disclosed their record, and why."""

    permission_classes = [IsPatient]

    @extend_schema(responses=None)
    def get(self, request: Request) -> Response:
        patient = patient_for_user(user=_user(request))
        return Response(
            {
                "results": [
                    {"when": e.when, "who": e.who, "role": e.role, "action": e.action, "what": e.what, "why": e.why}
                    for e in access_accounting(patient=patient)
                ]
            }
        )
