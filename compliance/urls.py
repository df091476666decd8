from django.urls import path

from compliance import views

app_name = "compliance"

urlpatterns = [
    path("exports/", views.exports, name="exports"),
    path("exports/start/", views.export_start, name="export-start"),
    path("exports/<int:pk>/", views.export_detail, name="export"),
    path("exports/<int:pk>/files/<str:name>", views.export_download, name="export-file"),
    path("ledger/verify/", views.ledger_verify_start, name="ledger-verify"),
    path("decisions/<int:pk>/", views.decision_record, name="decision"),
    path("audit/export/", views.audit_stream, name="audit-stream"),
    path("accounting/export/", views.accounting_stream, name="accounting-stream"),
    path("decisions/export/", views.decisions_stream, name="decisions-stream"),
]
