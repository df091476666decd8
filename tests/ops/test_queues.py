"""Celery queue depth read from the real brokers on this machine, and a scrape that stays quick when the broker
is down."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from clinaiops.celery import app, worker_queues
from clinaiops.ops.collectors import celery_queue_names, queue_cache_clear
from tests.ops.conftest import scrape

BROKERS = {
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
    "redis": ("redis://127.0.0.1:6379/0", 6379),
}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def celery_conf() -> Iterator[None]:
    """Celery reads Django settings once; these tests set its configuration directly and put it back."""
    saved = {key: app.conf[key] for key in ("broker_url", "task_default_queue", "task_routes", "task_queues")}
    queue_cache_clear()
    yield
    for key, value in saved.items():
        app.conf[key] = value
    queue_cache_clear()


def test_queue_names_come_from_celery_configuration_with_the_default_queue(celery_conf: None) -> None:
    # The project's routes: one queue per kind of work (settings CELERY_TASK_ROUTES), `default` included.
    assert celery_queue_names() == sorted(worker_queues())
    app.conf.task_routes = {
        "clinaiops.loops.tasks.*": {"queue": "evaluation"},
        "inference.tasks.training_run": {"queue": "training"},
    }
    app.conf.task_default_queue = "celery"
    app.conf.task_queues = None  # only routes and the default queue: each is still found
    assert celery_queue_names() == ["celery", "evaluation", "training"]


@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_queue_depth_counts_waiting_messages_per_queue(
    broker: str, celery_conf: None, settings: object, db: None
) -> None:
    url, port = BROKERS[broker]
    if broker == "redis":
        pytest.importorskip("redis", reason="kombu's Redis transport needs the redis package, not installed here")
    if not _listening(port):
        pytest.skip(f"{broker} is not running on this machine")
    settings.CELERY_TASK_ALWAYS_EAGER = False  # type: ignore[attr-defined]
    busy, idle = f"ops-test-{uuid.uuid4().hex[:10]}", f"ops-test-{uuid.uuid4().hex[:10]}"
    app.conf.broker_url = url
    app.conf.task_default_queue = busy
    app.conf.task_routes = {"clinaiops.audit.tasks.*": {"queue": idle}}
    with Connection(url) as conn:
        queue = conn.SimpleQueue(busy)
        try:
            for i in range(3):
                queue.put({"n": i})
            s = scrape()
            assert s.value("clinaiops_celery_broker_up") == 1
            assert s.value("clinaiops_celery_queue_depth", queue=busy) == 3
            assert s.value("clinaiops_celery_queue_depth", queue=idle) == 0  # never declared: nothing waiting
        finally:
            queue.clear()
            queue.close()
            conn.default_channel.queue_delete(busy)


def test_a_broker_that_is_down_reads_as_down_without_stalling_the_scrape(
    celery_conf: None, settings: object, db: None
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False  # type: ignore[attr-defined]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound but not listening: connections are refused
        app.conf.broker_url = f"amqp://guest:guest@127.0.0.1:{port}//"
        started = time.monotonic()
        s = scrape()
        assert time.monotonic() - started < 5
    assert s.value("clinaiops_celery_broker_up") == 0
    assert s.value("clinaiops_metrics_database_up") == 1  # the rest of the scrape still arrives
    # The answer is kept for a few seconds: a second scrape does not wait on the broker again.
    started = time.monotonic()
    assert scrape().value("clinaiops_celery_broker_up") == 0
    assert time.monotonic() - started < 0.5
