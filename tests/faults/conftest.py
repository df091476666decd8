"""Fixtures for the fault tests (issue 8 "Proof"): a private RabbitMQ node on spare ports, and real Celery workers
that a test can kill with SIGKILL and replace.

The node never touches the shared broker on 5672: its own node name, AMQP and distribution ports, config file
(so the system's listener on 5672 is not inherited), plugins file (no management listener), Erlang cookie (HOME)
and mnesia and log directories, all under a temporary directory. It is stopped with `rabbitmqctl -n <node> stop`
(and SIGKILL if that fails) when the session ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from kombu import Connection
from kombu import pools as kombu_pools

from tests.e2e.conftest import REPO_ROOT, Worker, _stop, worker_database_url, worker_queue_options, worker_wait_ready

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def _spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@dataclass
class RabbitNode:
    """A private RabbitMQ node. `stop()` and `start()` model a broker outage; its durable queues and persistent
    messages survive the restart, as they would in production."""

    base: Path
    name: str = field(default_factory=lambda: f"clinaiops-faults-{uuid.uuid4().hex[:8]}@localhost")
    port: int = field(default_factory=_spare_port)
    dist_port: int = field(default_factory=_spare_port)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.base),  # the node's and rabbitmqctl's own Erlang cookie
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 90) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq.conf").write_text("loopback_users.guest = false\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        subprocess.run([str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"], env=self._env(), check=True, timeout=60)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            time.sleep(0.5)
        raise AssertionError(f"the private RabbitMQ node {self.name} did not answer within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, "stop"],
            env=self._env(), capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        pid_file = self.base / "rabbitmq.pid"
        if _port_open(self.port) and pid_file.exists():  # it did not stop: end it, and only it
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)

    def answers(self) -> bool:
        try:
            with Connection(self.url, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1)
            return True
        except Exception:
            return False

    def queue_depth(self, queue: str) -> int:
        """Messages ready in `queue` (not counting those a consumer holds unacknowledged)."""
        with Connection(self.url, connect_timeout=5) as connection:
            channel = connection.channel()
            try:
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
            finally:
                channel.close()

    def log(self) -> str:
        logs = sorted((self.base / "log").glob("*.log")) if (self.base / "log").exists() else []
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in logs)


@pytest.fixture(scope="session")
def private_rabbitmq() -> Iterator[RabbitNode]:
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        pytest.skip("RabbitMQ is not installed (apt-get install rabbitmq-server); the fault tests need a private node")
    base = Path(tempfile.mkdtemp(prefix="clinaiops-faults-rabbitmq-"))
    node = RabbitNode(base=base)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def broker(private_rabbitmq: RabbitNode) -> Iterator[RabbitNode]:
    """The private node, up at the start of the test and again at its end (a test may stop it)."""
    if not private_rabbitmq.answers():
        private_rabbitmq.start()
    yield private_rabbitmq
    if not private_rabbitmq.answers():
        private_rabbitmq.start()


def worker_env(broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of a process (worker or command) that uses this test's database, broker and artifacts."""
    from django.db import connection

    database_url = worker_database_url(connection.settings_dict)
    if database_url is None:
        pytest.skip("the test database is SQLite in memory, which another process cannot open; run on PostgreSQL")
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinaiops.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "ARTIFACT_ROOT": str(Path(django_settings.ARTIFACT_ROOT).resolve()),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def worker_start(*, broker_url: str, queue: str, log_path: Path) -> Worker:
    """A real `celery -A clinaiops worker` (prefork, concurrency 1, prefetch 1, acks late as in production) on
    `queue`, in a process group of its own so that the test can SIGKILL the whole worker, pool child included."""
    queue_env, queues = worker_queue_options(queue)
    env = worker_env(broker_url, TRAINING_HEARTBEAT_SECONDS="1", **queue_env)
    # fmt: off
    command = [
        sys.executable, "-m", "celery", "-A", "clinaiops", "worker",
        "--loglevel", "INFO", "-Q", queues, "-n", f"{uuid.uuid4().hex[:8]}-{queue}@%h",
        "--pool", "prefork", "--concurrency", "1", "--prefetch-multiplier", "1",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    # fmt: on
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process=process, queue=queue, log_path=log_path)
    worker_wait_ready(worker, seconds=90)
    return worker


def worker_kill(worker: Worker) -> None:
    """kill -9 of the worker: the main process and its pool child, with no chance to ack, requeue or clean up."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=30)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """`workers(broker_url=..., queue=...)` starts a worker; every worker started is stopped at the end."""
    started: list[Worker] = []

    def start(*, broker_url: str, queue: str) -> Worker:
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = worker_start(broker_url=broker_url, queue=queue, log_path=log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        _stop(worker.process)


@contextlib.contextmanager
def app_on_broker(broker_url: str, queue: str) -> Iterator[Any]:
    """The project's Celery app, in this process, sending for real to `broker_url`, every task routed to `queue`.
    Restored afterwards so the rest of the suite stays eager."""
    from clinaiops.celery import app as project_app

    app: Any = project_app  # the pools are private attributes, untyped in celery-types
    keys = ("broker_url", "task_always_eager", "task_routes", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}

    def reset_connections() -> None:
        for pool in (app._pool, app.__dict__.get("amqp") and app.amqp._producer_pool):
            if pool:
                with contextlib.suppress(Exception):
                    pool.force_close_all()
        app._pool = None
        if "amqp" in app.__dict__:
            app.amqp._producer_pool = None
            app.amqp.flush_routes()
        kombu_pools.reset()

    routes = {pattern: {"queue": queue} for pattern in ("clinaiops.*", "inference.*", "compliance.*")}
    app.conf.update(broker_url=broker_url, task_always_eager=False, task_routes=routes, task_default_queue=queue)
    reset_connections()
    app.reset_connections = reset_connections  # after a broker restart: drop connections to the old process
    try:
        yield app
    finally:
        reset_connections()
        del app.reset_connections
        app.conf.update(saved)
        if "amqp" in app.__dict__:
            app.amqp.flush_routes()


def wait_for(predicate: Callable[[], Any], what: str, *, seconds: float = 120, worker: Worker | None = None) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker died (exit {worker.process.returncode}) waiting for {what}:\n{worker.log_tail()}")
        time.sleep(0.05)
    tail = worker.log_tail() if worker is not None else ""
    pytest.fail(f"no {what} within {seconds} s\n{tail}")


def report(scenario: str, *, lost: int, duplicated: int, stranded: int) -> str:
    line = f"{scenario}: lost {lost}, duplicated {duplicated}, stranded {stranded}"
    print(line)  # shown with -s / -rA; the assertions below say the same
    return line
