from django.urls import path

from ceiling import views

urlpatterns = [
    path("readings/", views.ReadingCreate.as_view()),
    path("recommendations/", views.RecommendationList.as_view()),
]
