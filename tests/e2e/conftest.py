"""Fixtures for the slow end-to-end tests: a real headless Chromium and a real Celery worker on RabbitMQ.

Playwright's sync API keeps an asyncio loop marked as running in the calling thread for as long as Playwright
is started, and Django then refuses ORM calls from that thread (SynchronousOnlyOperation). Rather than turn
that safety check off with DJANGO_ALLOW_ASYNC_UNSAFE, `chromium_page` is a context manager: a test does its
ORM set-up before it, drives the browser inside it, and makes its database assertions after it, when
Playwright has stopped. The live server answers the browser from its own thread, which has no loop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from kombu import pools as kombu_pools

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
REPO_ROOT = Path(__file__).resolve().parents[2]


# --- Browser ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _chromium_page(screenshot_dir: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            try:
                yield page
            except BaseException as exc:
                screenshot = screenshot_dir / "failure.png"
                with contextlib.suppress(Exception):
                    screenshot_dir.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot), full_page=True)
                    exc.add_note(f"screenshot of the page at failure: {screenshot} (url {page.url})")
                raise
        finally:
            browser.close()


@pytest.fixture
def chromium_page(tmp_path: Path) -> Callable[[], AbstractContextManager[Any]]:
    """`with chromium_page() as page:` a Playwright page in headless Debian Chromium. No ORM calls inside.
    Request it first, so a machine without Chromium skips before any set-up."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run browser tests")
    return lambda: _chromium_page(tmp_path / "screenshots")


# --- RabbitMQ and a real Celery worker -------------------------------------------------------------------


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _broker_answers(url: str) -> bool:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The RabbitMQ URL, starting the local server (rabbitmq-server -detached) if it is installed but down."""
    if _port_open("127.0.0.1", 5672) and _broker_answers(BROKER_URL):
        return BROKER_URL
    server = shutil.which("rabbitmq-server")
    if server is not None:
        subprocess.run([server, "-detached"], check=False, capture_output=True, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _port_open("127.0.0.1", 5672) and _broker_answers(BROKER_URL):
                return BROKER_URL
            time.sleep(1)
    pytest.fail(
        f"RabbitMQ is not reachable at {BROKER_URL} and could not be started "
        f"({'rabbitmq-server -detached did not bring it up' if server else 'rabbitmq-server is not installed'}). "
        "CI must provide RabbitMQ for the real-worker test (make services starts it)."
    )


def worker_database_url(settings_dict: dict[str, Any]) -> str | None:
    """A DATABASE_URL naming the database this test process is using, or None when another process cannot
    open it (SQLite in memory, which is what pytest-django makes of an SQLite test database)."""
    engine = settings_dict["ENGINE"]
    name = str(settings_dict["NAME"])
    if engine == "django.db.backends.sqlite3":
        if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            return None
        return f"sqlite:///{Path(name).resolve()}"
    if engine == "django.db.backends.postgresql":
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{quote(name, safe='')}"
    raise AssertionError(f"no worker DATABASE_URL for engine {engine}")


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    queue: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL to the worker's own process group (its pool children)."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group was created for this worker only
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # any pool child left behind by the warm shutdown


def worker_wait_ready(worker: Worker, *, seconds: float) -> None:
    """Wait for the worker's " ready." line; fail with its log if it exits or takes longer than `seconds`."""
    deadline = time.monotonic() + seconds
    while " ready." not in worker.log():
        if worker.process.poll() is not None:
            code = worker.process.returncode
            pytest.fail(f"the Celery worker exited with {code} before it was ready:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the Celery worker was not ready within {seconds:.0f} s:\n{worker.log_tail()}")
        time.sleep(0.2)


def worker_queue_options(queue: str) -> tuple[dict[str, str], str]:
    """The environment and the ``-Q`` value of a test worker: its private `queue`, where this process sends, and every
    queue of the project's routes (settings CELERY_TASK_ROUTES, one per kind of work) under a prefix of its own, for
    the tasks the worker itself sends (an audit checkpoint, say). The prefix keeps them off the shared broker's real
    queues, where another engineer's worker, on another database, would take them."""
    prefix = f"{queue}-"
    queues = [queue, *(f"{prefix}{kind}" for kind in django_settings.TASK_QUEUE_KINDS)]
    return {"TASK_QUEUE_PREFIX": prefix}, ",".join(queues)


@contextlib.contextmanager
def worker_running(*, broker_url: str, log_path: Path, concurrency: int = 1) -> Iterator[Worker]:
    """A real `celery -A clinaiops worker` subprocess on `broker_url`, consuming only a queue of its own,
    using this test's database and artifact store; stopped on exit, whatever happened."""
    from django.db import connection

    database_url = worker_database_url(connection.settings_dict)
    if database_url is None:
        pytest.skip(
            "the test database is SQLite in memory (pytest-django's default for SQLite), which a worker "
            "process cannot open; the real-worker test runs on PostgreSQL"
        )
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    queue_env, queues = worker_queue_options(queue)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinaiops.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "ARTIFACT_ROOT": str(Path(django_settings.ARTIFACT_ROOT).resolve()),
        "PYTHONUNBUFFERED": "1",
        **queue_env,
    }
    # fmt: off
    command = [
        sys.executable, "-m", "celery", "-A", "clinaiops", "worker",
        "--loglevel", "INFO", "-Q", queues, "-n", f"{queue}@%h",
        "--pool", "prefork", "--concurrency", str(concurrency), "--prefetch-multiplier", "1",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    # fmt: on
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process=process, queue=queue, log_path=log_path)
    try:
        worker_wait_ready(worker, seconds=60)
        yield worker
    finally:
        _stop(process)


@pytest.fixture
def celery_worker(
    request: pytest.FixtureRequest, transactional_db: None, rabbitmq_url: str, tmp_path: Path
) -> Iterator[Worker]:
    """One real worker process (prefork, prefetch 1, as in production; concurrency 1 unless a test
    parametrizes it indirectly) on a private queue. `transactional_db`: the rows this test writes are
    committed, so the worker can see them."""
    concurrency = getattr(request, "param", 1)
    with worker_running(
        broker_url=rabbitmq_url, log_path=tmp_path / "celery-worker.log", concurrency=concurrency
    ) as worker:
        yield worker


@pytest.fixture
def celery_app_on_broker(rabbitmq_url: str, celery_worker: Worker) -> Iterator[Any]:
    """The project's Celery app, in this process, sending for real to RabbitMQ and routing the loop tasks to
    the worker's private queue. Restored afterwards so the rest of the suite stays eager."""
    from clinaiops.celery import app as project_app

    app: Any = project_app  # the pools below are private attributes, untyped in celery-types
    keys = ("broker_url", "task_always_eager", "task_routes", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}

    def reset_connections() -> None:
        # The connection and producer pools remember the broker they were made for.
        for pool in (app._pool, app.__dict__.get("amqp") and app.amqp._producer_pool):
            if pool:
                pool.force_close_all()
        app._pool = None
        if "amqp" in app.__dict__:
            app.amqp._producer_pool = None
            app.amqp.flush_routes()
        # kombu also keeps process-wide pools keyed by broker URL; a closed one would be handed back next time.
        kombu_pools.reset()

    app.conf.update(
        broker_url=rabbitmq_url,
        task_always_eager=False,
        task_routes={"clinaiops.loops.tasks.*": {"queue": celery_worker.queue}},
        # Anything else this process sends goes to the worker too, not to the shared broker's `default` queue.
        task_default_queue=celery_worker.queue,
    )
    reset_connections()
    try:
        yield app
    finally:
        reset_connections()
        app.conf.update(saved)
        if "amqp" in app.__dict__:
            app.amqp.flush_routes()
