"""A private PostgreSQL cluster for fault tests: initdb + pg_ctl on a spare port under a temporary folder, so a test
can restart it, stop its processes or kill them without touching the shared server on 5432."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest


def postgres_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin with initdb and pg_ctl, or the one on PATH."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: under root (a container), the server runs as the `postgres` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivateCluster:
    bindir: Path
    root: Path
    port: int

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_server_owner(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "30", *args]
            ),
            check=True,
            capture_output=True,
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
        subprocess.run(
            _as_server_owner(
                [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
            "fsync = off\nmax_connections = 40\nshared_buffers = 32MB\n"
        )
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(options)

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def postmaster_pid(self) -> int:
        return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])

    def processes(self) -> list[int]:
        """The postmaster and every process it forked (backends, checkpointer, WAL writer...)."""
        postmaster = self.postmaster_pid()
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The command name (field 2) may hold spaces; the parent pid is the 2nd field after it.
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    def signal_all(self, signum: signal.Signals) -> list[int]:
        pids = self.processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        return pids

    def scalar(self, dbname: str, sql: str, params: Sequence[Any] = ()) -> Any:
        """One value, on a connection of its own (autocommit), so it never joins a transaction under test."""
        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql, params)  # type: ignore[arg-type]
            row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """Started on a spare port; stopped and deleted afterwards. The folder is short-named: the Unix socket's path
    must fit in 107 bytes."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="clinaiops-pg-"))
    cluster = PrivateCluster(bindir=bindir, root=root, port=spare_port())
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        # Whatever the test did to the processes, they end: resumed, then stopped at once.
        with contextlib.suppress(Exception):
            cluster.signal_all(signal.SIGCONT)
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
        time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)
