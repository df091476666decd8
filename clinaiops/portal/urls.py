from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinaiops.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("queue/", views.queue, name="queue"),
    path("recommendations/<int:pk>/", views.recommendation_detail, name="recommendation"),
    path("patients/", views.patient_list, name="patients"),
    path("patients/<int:pk>/", views.patient_detail, name="patient"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", views.alert_ack, name="alert-ack"),
    path("models/", views.models, name="models"),
    path("models/<int:pk>/", views.model_detail, name="model"),
    path("audit/", views.audit, name="audit"),
    path("emergency-access/", views.break_glass, name="break-glass"),
    path("governance/policy/", views.policy, name="policy"),
    path("compliance/accounting/", views.accounting, name="accounting"),
    path("monitoring/", include("clinaiops.portal.urls_monitoring")),
]
