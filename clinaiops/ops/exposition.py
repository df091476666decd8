"""Which registry a scrape reads: the process-local counters (summed over gunicorn's workers in multiprocess mode)
plus the state read from the database at scrape time."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from clinaiops.ops.collectors import ClinicalStateCollector, QueueDepthCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _Forward:
    """Yields another registry's metrics, so one exposition holds both kinds."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


def process_registry() -> CollectorRegistry:
    """The event counters: from every process's files in multiprocess mode, else this process's own registry
    (which also carries prometheus_client's process and GC collectors)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def metrics_render() -> bytes:
    """The text exposition for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(process_registry()))  # type: ignore[arg-type]
    registry.register(ClinicalStateCollector())
    registry.register(QueueDepthCollector())
    return generate_latest(registry)
