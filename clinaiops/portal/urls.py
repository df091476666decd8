from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinaiops.portal.views import account, alerts, clinical, compliance, models, policy, simulation, worklist
from clinaiops.portal.views import partnership as partnership_views

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
    path("queue/", worklist.queue, name="queue"),
    path("recommendations/<int:pk>/", clinical.recommendation_detail, name="recommendation"),
    path("patients/", clinical.patient_list, name="patients"),
    path("patients/<int:pk>/", clinical.patient_detail, name="patient"),
    path("patients/<int:pk>/care-plan/", partnership_views.care_plan, name="care-plan"),
    path("patients/<int:pk>/visit-summary/", partnership_views.visit_summary, name="visit-summary"),
    path("patients/<int:pk>/visit-summary.pdf", partnership_views.visit_summary_pdf, name="visit-summary-pdf"),
    path("alerts/", alerts.alert_list, name="alerts"),
    path("alerts/<int:pk>/", alerts.alert_detail, name="alert"),
    path("alerts/<int:pk>/acknowledge/", alerts.alert_ack, name="alert-ack"),
    path("inbox/", alerts.inbox, name="inbox"),
    path("models/", models.models, name="models"),
    path("models/<int:pk>/", models.model_detail, name="model"),
    path("models/<int:pk>/signoff/", models.model_signoff, name="model-signoff"),
    path("models/<int:pk>/promote/", models.model_promote, name="model-promote"),
    path("models/compare/", models.models_compare, name="models-compare"),
    path("models/rollback/", models.serving_rollback_view, name="serving-rollback"),
    path("audit/", compliance.audit, name="audit"),
    path("audit/<int:seq>/", compliance.audit_event, name="audit-event"),
    path("emergency-access/", clinical.break_glass, name="break-glass"),
    path("governance/policy/", policy.policy, name="policy"),
    path("governance/policy/changes/<int:pk>/countersign/", policy.policy_countersign, name="policy-countersign"),
    path("governance/policy/changes/<int:pk>/withdraw/", policy.policy_withdraw, name="policy-withdraw"),
    path("governance/ai-stop/", policy.ai_stop_page, name="ai-stop"),
    path("governance/simulation/", simulation.simulation, name="simulation"),
    path("governance/ai-stop/<int:pk>/resume/", policy.ai_resume_view, name="ai-resume"),
    path("compliance/accounting/", compliance.accounting, name="accounting"),
    path("monitoring/", include("clinaiops.portal.urls_monitoring")),
]
