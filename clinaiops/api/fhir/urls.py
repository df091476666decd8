"""FHIR R4 (US Core) ingest under /api/v1/fhir/ (clinaiops/api/urls.py includes it): Observations and Bundles
through the reading-ingest service; every other URL here answers a FHIR OperationOutcome 404."""

from django.urls import path, re_path

from clinaiops.api.fhir import views

urlpatterns = [
    path("", views.BundleView.as_view(), name="fhir-bundle"),
    path("Observation", views.ObservationCreateView.as_view(), name="fhir-observation"),
    path("metadata", views.MetadataView.as_view(), name="fhir-metadata"),
    re_path(r"^.*$", views.FhirNotFoundView.as_view(), name="fhir-not-found"),
]
