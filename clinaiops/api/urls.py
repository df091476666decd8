from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from clinaiops.api import auth_views, views, views_sync

app_name = "api"

urlpatterns = [
    path("auth/token/", auth_views.TokenView.as_view(), name="token"),
    path("auth/token/refresh/", auth_views.TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/logout/", auth_views.SignOutView.as_view(), name="logout"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/access-log/", views.AccessLogView.as_view(), name="access-log"),
    path("readings/", views.ReadingListCreateView.as_view(), name="readings"),
    path("readings/batch/", views_sync.ReadingBatchView.as_view(), name="readings-batch"),
    path("symptoms/", views.SymptomListCreateView.as_view(), name="symptoms"),
    path("doses/", views_sync.DoseListCreateView.as_view(), name="doses"),
    path("doses/schedule/", views_sync.DoseScheduleView.as_view(), name="dose-schedule"),
    path("recommendations/", views.RecommendationListView.as_view(), name="recommendations"),
    path("recommendations/<int:pk>/", views.RecommendationDetailView.as_view(), name="recommendation"),
    path("recommendations/<int:pk>/respond/", views.RecommendationRespondView.as_view(), name="recommendation-respond"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    # FHIR R4 ingest (clinaiops/api/fhir/), the patient's care plan and alerts, the self-hosted API docs.
    path("fhir/", include("clinaiops.api.fhir.urls")),
    path("", include("clinaiops.api.urls_care")),
    path("", include("clinaiops.api.urls_docs")),
]
