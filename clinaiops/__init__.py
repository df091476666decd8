"""ClinAIOps: clinical human-in-the-loop ML governance."""

from clinaiops.celery import app as celery_app

__all__ = ["celery_app"]
