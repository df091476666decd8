from django.urls import path

from compliance.api import AccessLogExportView

app_name = "compliance-api"

urlpatterns = [
    path("me/access-log/export/", AccessLogExportView.as_view(), name="access-log-export"),
]
