from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from clinaiops.api import auth_views, views

app_name = "api"

urlpatterns = [
    path("auth/token/", auth_views.TokenView.as_view(), name="token"),
    path("auth/token/refresh/", auth_views.TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/logout/", auth_views.SignOutView.as_view(), name="logout"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/access-log/", views.AccessLogView.as_view(), name="access-log"),
    path("readings/", views.ReadingListCreateView.as_view(), name="readings"),
    path("symptoms/", views.SymptomCreateView.as_view(), name="symptoms"),
    path("recommendations/", views.RecommendationListView.as_view(), name="recommendations"),
    path("recommendations/<int:pk>/", views.RecommendationDetailView.as_view(), name="recommendation"),
    path("recommendations/<int:pk>/respond/", views.RecommendationRespondView.as_view(), name="recommendation-respond"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
]
