"""Monitoring pages, included under "monitoring/" in the portal's URLconf (names inherit the "portal" namespace)."""

from django.urls import path

from clinaiops.portal.views import monitoring as views

urlpatterns = [
    path("", views.overview, name="monitoring"),
    path("drift/", views.drift_list, name="monitoring-drift-list"),
    path("drift/run/", views.drift_run, name="monitoring-drift-run"),
    path("drift/<int:pk>/", views.drift_detail, name="monitoring-drift"),
    path("alerts/", views.alert_list, name="monitoring-alerts"),
    path("alerts/<int:pk>/acknowledge/", views.alert_ack, name="monitoring-alert-ack"),
    path("canary/advance/", views.canary_advance, name="monitoring-canary-advance"),
]
