from django.contrib import admin
from django.urls import include, path

from clinaiops.portal.views.errors import favicon

urlpatterns = [
    path("", include("clinaiops.ops.urls")),
    path("api/v1/", include("compliance.urls_api")),
    path("api/v1/", include("clinaiops.api.urls")),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin, JSON): answer it, never a 404.
    path("favicon.ico", favicon, name="favicon"),
    path("compliance/", include("compliance.urls")),
    path("", include("clinaiops.portal.urls")),
]

# Under /api/ these answer JSON in the API's error shape; elsewhere Django's pages (clinaiops/api/errors.py).
handler400 = "clinaiops.api.errors.api_bad_request"
handler403 = "clinaiops.api.errors.api_permission_denied"
handler404 = "clinaiops.api.errors.api_not_found"
handler500 = "clinaiops.api.errors.api_server_error"
