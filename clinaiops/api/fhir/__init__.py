"""FHIR R4 (US Core) ingest: Observations and Bundles through the reading-ingest service."""
