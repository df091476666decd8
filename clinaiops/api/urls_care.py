"""The patient's care plan and alerts (issue 12): read-only, patients only (clinaiops/api/views_care.py)."""

from django.urls import URLPattern, path

from clinaiops.api import views_care

urlpatterns: list[URLPattern] = [
    path("goals/", views_care.GoalListView.as_view(), name="goals"),
    path("notes/", views_care.NoteListView.as_view(), name="notes"),
    path("follow-up/", views_care.FollowUpView.as_view(), name="follow-up"),
    path("care-team/", views_care.CareTeamView.as_view(), name="care-team"),
    path("alerts/", views_care.AlertListView.as_view(), name="alerts"),
]
