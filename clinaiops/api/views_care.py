"""The patient's care plan and alerts in the mobile API (issue 12): goals, the notes the patient may read, the next
follow-up, the care team, the safety alerts. Read-only; one view per operation: validate the query → selector →
serialize.

Reads of one's own record are not written to the audit ledger, as for /me/ and /recommendations/: the ledger and the
patient's accounting (/me/access-log/) record who else read the record. No URL here names an object, so there is no
other patient's object to refuse: every answer is scoped to the signed-in patient by `patient_for_user`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinaiops.api.pagination import BoundedLimitOffsetPagination
from clinaiops.api.permissions import IsPatient, request_user
from clinaiops.api.query import query_filters
from clinaiops.api.serializers_care import (
    ALERT_STATUS_ALL,
    AlertFilterSerializer,
    CareTeamSerializer,
    FollowUpSerializer,
    GoalListSerializer,
    NoteFilterSerializer,
    NoteSerializer,
    PatientAlertSerializer,
)
from clinaiops.care.selectors import alerts_for_patient_view, patient_for_user
from clinaiops.partnership.goals import PROGRESS_WINDOW_DAYS
from clinaiops.partnership.selectors import (
    care_team_for_patient_view,
    followup_status,
    goal_progress_with_trend,
    notes_for_patient_between,
)

TAGS = ["care plan"]
# The descriptions of the refusals these views give; clinaiops.api.schema gives each the one error shape (and adds
# the statuses every operation shares: 401, 500, 503).
_ERRORS: dict[int | str, Any] = {
    403: OpenApiResponse(description="Signed in, but not as a patient: staff use the portal."),
    404: OpenApiResponse(description="This account has no patient record."),
}
_BAD_QUERY = {400: OpenApiResponse(description="A query parameter is invalid; `fields` names it.")}


class GoalListView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        operation_id="goals_list",
        tags=TAGS,
        summary="The patient's goals and their progress",
        description=f"The blood-pressure target and each active lifestyle goal, with progress over the last "
        f"{PROGRESS_WINDOW_DAYS} days and the trend against the {PROGRESS_WINDOW_DAYS} days before.",
        responses={
            200: OpenApiResponse(GoalListSerializer, description="The goals, in the patient's words."),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        patient = patient_for_user(user=request_user(request))
        goals = goal_progress_with_trend(patient)
        return Response(GoalListSerializer({"window_days": PROGRESS_WINDOW_DAYS, "results": goals}).data)


class PatientPagedListView(generics.ListAPIView[Any]):
    """A page of the signed-in patient's own objects, newest first. Subclasses give the queryset; their schema is
    given with `extend_schema_view`, so no view repeats a `get` only to carry it."""

    permission_classes = [IsPatient]
    pagination_class = BoundedLimitOffsetPagination


@extend_schema_view(
    get=extend_schema(
        operation_id="notes_list",
        tags=TAGS,
        summary="Notes from the care team",
        description="The notes a clinician marked for the patient to read, newest first; notes the care team "
        "keeps to itself never appear. `since` and `until` are calendar days, inclusive.",
        parameters=[NoteFilterSerializer],
        responses={
            200: OpenApiResponse(NoteSerializer(many=True), description="A page of notes, newest first."),
            **_BAD_QUERY,
            **_ERRORS,
        },
    )
)
class NoteListView(PatientPagedListView):
    """The notes the care team marked for the patient, newest first."""

    serializer_class = NoteSerializer

    def get_queryset(self) -> Any:
        query = query_filters(NoteFilterSerializer, self.request)
        patient = patient_for_user(user=request_user(self.request))
        return notes_for_patient_between(patient, since=query.get("since"), until=query.get("until"))


class FollowUpView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        operation_id="follow_up_retrieve",
        tags=TAGS,
        summary="The next follow-up",
        description="When the care team plans to review the patient's care next, and why. An enrolled patient "
        "always has one: the rule counts from the last follow-up, or from enrolment.",
        responses={200: OpenApiResponse(FollowUpSerializer, description="The next follow-up and why."), **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        patient = patient_for_user(user=request_user(request))
        return Response(FollowUpSerializer(followup_status(patient)).data)


class CareTeamView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        operation_id="care_team_retrieve",
        tags=TAGS,
        summary="The patient's care team",
        description="The team's name, its clinicians with their roles (names only: no e-mail or username), and "
        "who to contact first.",
        responses={
            200: OpenApiResponse(CareTeamSerializer, description="The care team, names and roles only."),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        patient = patient_for_user(user=request_user(request))
        return Response(CareTeamSerializer(care_team_for_patient_view(patient)).data)


@extend_schema_view(
    get=extend_schema(
        operation_id="alerts_list",
        tags=TAGS,
        summary="The patient's safety alerts",
        description="Alerts raised by the patient's readings or symptoms (a hypertensive crisis, sustained low "
        "blood pressure), newest first, each with what to do now. Open ones by default; `status=all` for every "
        "one. Alerts about staff access to the record are in /me/access-log/, not here.",
        parameters=[AlertFilterSerializer],
        responses={
            200: OpenApiResponse(PatientAlertSerializer(many=True), description="A page of alerts, newest first."),
            **_BAD_QUERY,
            **_ERRORS,
        },
    )
)
class AlertListView(PatientPagedListView):
    """The patient's safety alerts, newest first."""

    serializer_class = PatientAlertSerializer

    def get_queryset(self) -> Any:
        status = query_filters(AlertFilterSerializer, self.request)["status"]
        patient = patient_for_user(user=request_user(self.request))
        return alerts_for_patient_view(patient=patient, status=None if status == ALERT_STATUS_ALL else status)
