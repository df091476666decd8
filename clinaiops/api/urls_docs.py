"""The API's self-hosted documentation: Swagger UI at /api/v1/docs/ over the schema at /api/v1/schema/.

Swagger UI's files come from drf-spectacular-sidecar through our own static files (SWAGGER_UI_DIST "SIDECAR"), so
the page loads nothing from another host. The site's Content-Security-Policy holds: the page's script is a file of
its own (SpectacularSwaggerSplitView serves it at ?script), its one <style> block carries the response's nonce
(api/swagger_ui.html), and only this page also allows `data:` images, which Swagger UI's stylesheet uses for its
icons."""

from __future__ import annotations

from csp.decorators import csp_update
from django.urls import URLPattern, path
from drf_spectacular.views import SpectacularSwaggerSplitView


class ApiDocsView(SpectacularSwaggerSplitView):
    # Public, as the schema is; a stale token in the browser must not turn the page into a 401.
    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    template_name = "api/swagger_ui.html"
    url_name = "api:schema"
    title = "ClinAIOps patient mobile API"


urlpatterns: list[URLPattern] = [
    path("docs/", csp_update({"img-src": ["data:"]})(ApiDocsView.as_view()), name="docs"),
]
