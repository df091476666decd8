"""Processes the bench starts and stops itself: gunicorn (product or ceiling) on a spare loopback port, and a
RabbitMQ virtual host of its own. Each is stopped by the id the bench started it with."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


class Gunicorn:
    """gunicorn with sync workers on 127.0.0.1:<spare port>, stopped on exit."""

    def __init__(
        self, app: str, *, env: dict[str, str], workers: int = 2, chdir: Path = ROOT, config: str | None = None,
        log: Path | None = None, wait: bool = True,
    ) -> None:  # fmt: skip
        self.port = free_port()
        self.wait = wait
        self.app, self.env, self.workers, self.chdir, self.config = app, env, workers, chdir, config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Gunicorn:
        command = [str(VENV_BIN / "gunicorn"), self.app, "--chdir", str(self.chdir)]
        if self.config:
            command += ["-c", self.config]
        command += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--worker-class", "sync"]
        command += ["--log-level", "warning"]
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(self.workers)}
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
        if self.wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        """Block until /healthz answers and every worker has started (a server started with wait=False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.app} exited with {self.process.returncode}; see {self.log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                if len(self.worker_pids()) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.app} did not answer on port {self.port} within {timeout:.0f}s")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return children(self.process.pid)

    def worker_rss_mb(self) -> list[float]:
        return [rss_mb(pid) for pid in self.worker_pids()]

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class CeleryWorker:
    """A Celery worker on the bench's vhost and database, for the evaluations/s figures (concurrency 1, 2, 4) once
    readings enqueue evaluations (bench/run.py's TODO slot)."""

    def __init__(self, *, env: dict[str, str], concurrency: int, queues: str = "celery", log: Path | None = None):
        self.env, self.concurrency, self.queues, self.log = env, concurrency, queues, log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CeleryWorker:
        command = [
            str(VENV_BIN / "celery"), "-A", "clinaiops", "worker", "--pool", "prefork", "-c", str(self.concurrency),
            "-Q", self.queues, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ]  # fmt: skip
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=output, stderr=output)
        return self

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid, *children(self.process.pid)]

    def rss_mb(self) -> list[float]:
        return [rss_mb(pid) for pid in self.pids()]

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class RabbitVhost:
    """A RabbitMQ virtual host of the bench's own on the machine's broker, deleted afterwards, so no message the
    bench publishes reaches anyone else's worker (and no one else's reaches the bench's)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tool = shutil.which("rabbitmqctl")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.name}"

    def _ctl(self, *args: str) -> None:
        assert self.tool is not None
        subprocess.run([self.tool, "-q", *args], check=True, capture_output=True, timeout=60)

    def __enter__(self) -> RabbitVhost:
        if self.tool is None:
            raise RuntimeError("rabbitmqctl not found: the bench needs RabbitMQ on this machine (make services)")
        self._ctl("add_vhost", self.name)
        self._ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            self._ctl("delete_vhost", self.name)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"  (could not delete RabbitMQ vhost {self.name}: {exc})", file=sys.stderr)


def environment_for(settings: str, extra: dict[str, str]) -> dict[str, str]:
    """The process environment for a product process: this interpreter's, minus anything that would point it at
    another database or broker, plus the bench's own."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "DJANGO_"))}
    return {**keep, "DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(ROOT), **extra}
