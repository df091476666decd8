from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinaiops.portal.views import account, clinical, compliance, models, policy

app_name = "portal"

urlpatterns = [
    path("", clinical.home, name="home"),
    path("login/", account.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", account.account, name="account"),
    path("account/password/", account.password_change, name="password-change"),
    path("account/mfa/verify/", account.mfa_verify, name="mfa-verify"),
    path("account/mfa/enrol/", account.mfa_enrol, name="mfa-enrol"),
    path("account/mfa/remove/", account.mfa_remove_view, name="mfa-remove"),
    path("account/session/", account.session_status, name="session"),
    path("queue/", clinical.queue, name="queue"),
    path("recommendations/<int:pk>/", clinical.recommendation_detail, name="recommendation"),
    path("patients/", clinical.patient_list, name="patients"),
    path("patients/<int:pk>/", clinical.patient_detail, name="patient"),
    path("alerts/", clinical.alert_list, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", clinical.alert_ack, name="alert-ack"),
    path("models/", models.models, name="models"),
    path("models/<int:pk>/", models.model_detail, name="model"),
    path("audit/", compliance.audit, name="audit"),
    path("audit/<int:seq>/", compliance.audit_event, name="audit-event"),
    path("emergency-access/", clinical.break_glass, name="break-glass"),
    path("governance/policy/", policy.policy, name="policy"),
    path("governance/ai-stop/", policy.ai_stop_page, name="ai-stop"),
    path("governance/ai-stop/<int:pk>/resume/", policy.ai_resume_view, name="ai-resume"),
    path("compliance/accounting/", compliance.accounting, name="accounting"),
    path("monitoring/", include("clinaiops.portal.urls_monitoring")),
]
