from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinaiops.portal.views import clinical, compliance, models, policy

app_name = "portal"

urlpatterns = [
    path("", clinical.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("queue/", clinical.queue, name="queue"),
    path("recommendations/<int:pk>/", clinical.recommendation_detail, name="recommendation"),
    path("patients/", clinical.patient_list, name="patients"),
    path("patients/<int:pk>/", clinical.patient_detail, name="patient"),
    path("alerts/", clinical.alert_list, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", clinical.alert_ack, name="alert-ack"),
    path("models/", models.models, name="models"),
    path("models/<int:pk>/", models.model_detail, name="model"),
    path("audit/", compliance.audit, name="audit"),
    path("emergency-access/", clinical.break_glass, name="break-glass"),
    path("governance/policy/", policy.policy, name="policy"),
    path("compliance/accounting/", compliance.accounting, name="accounting"),
    path("monitoring/", include("clinaiops.portal.urls_monitoring")),
]
