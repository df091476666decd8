from django.urls import path

from clinaiops.ops import views

app_name = "ops"

# Also answered by OpsEndpointsMiddleware before host validation and sessions; these routes are the fallback
# when that middleware is not installed, and what reverse() names.
urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
]
