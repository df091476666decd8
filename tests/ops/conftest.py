"""Helpers for reading /metrics the way Prometheus does: through the text exposition, not the registry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from inference.models import DatasetSnapshot, ModelVersion, TrainingRun


class Scrape:
    """One scrape of /metrics, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = [sample for family in self.families.values() for sample in family.samples]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample with this name whose labels include `labels` (None when absent)."""
        matches = [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        assert len(matches) <= 1, f"{name}{labels} matches {len(matches)} samples"
        return matches[0] if matches else None

    def total(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items())

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


def celery_task(name: str) -> Any:
    """A registered task by its stable name (the modules that define them are moving; the names are not)."""
    from clinaiops.celery import app

    app.loader.import_default_modules()  # autodiscovery is lazy: import every app's tasks module now
    return app.tasks[name]


def scrape(client: Client | None = None, **headers: Any) -> Scrape:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return Scrape(response.content.decode())


@pytest.fixture
def model_version_row(db: None) -> ModelVersion:
    """A registered model version as rows only (no training): enough to hang recommendations and drift reports
    on, for metrics that only count them."""
    now = timezone.now()
    snapshot = DatasetSnapshot.objects.create(
        sha256="a" * 64, feature_set_version="ops-test", created_at=now, time_start=now - timedelta(days=30),
        time_end=now, row_count=10, provenance_counts={}, class_counts={}, quality_report={}, quality_passed=True,
    )  # fmt: skip
    run = TrainingRun.objects.create(
        snapshot=snapshot, family="logistic", params={}, seed=1, code_version="test", library_versions={},
        created_at=now,
    )  # fmt: skip
    return ModelVersion.objects.create(
        sha256="b" * 64, sklearn_sha256="c" * 64, background_sha256="d" * 64, family="logistic",
        feature_set_version="ops-test", feature_names=[], classes=["decrease", "maintain", "increase"],
        training_run=run, metrics={}, parity_max_abs_diff=0.0, created_at=now,
    )  # fmt: skip
