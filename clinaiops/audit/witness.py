"""The checkpoint witness: every signed checkpoint is also published outside the database as it is made
(DESIGN §4, issue 8). Someone who can rewrite the database, checkpoints and all, still cannot hide a cut tail or
a rewritten history: the verifier compares the database with what was published.

Each entry is one line of canonical JSON holding the checkpoint's signed fields and its signature:
seq, head_hash, event_count, created_at, key_id, segment_start, segment_hashes, signature. Nothing else, so a
line is checked by its signature alone, wherever it was kept.

Sinks (AUDIT_WITNESS_SINKS, comma-separated):
- "file": an append-only JSON-lines file (AUDIT_WITNESS_FILE, by default ARTIFACT_ROOT/audit/witness.jsonl),
  written with O_APPEND and fsync. It is also what `audit_verify` reads.
- "syslog": the same line sent to a syslog host (AUDIT_WITNESS_SYSLOG_ADDRESS: udp://host:514, tcp://host:601
  or a local socket such as /dev/log), tagged "clinaiops-audit-witness". A copy of those lines can be given to
  `audit_verify --witness FILE`.
- a dotted path to a class with `name` and `publish(checkpoint)` (and optionally `read()`), constructed with no
  arguments: a deployment's WORM store.

Publishing happens after the checkpoint commits, never before: a witness entry always names a checkpoint that
existed, so "witnessed but missing from the database" can only mean it was removed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.module_loading import import_string

from clinaiops.audit.chain import SignedCheckpoint
from clinaiops.core.canonical import canonical_bytes

logger = logging.getLogger(__name__)

WITNESS_TAG = "clinaiops-audit-witness"
_FIELDS = (
    "created_at", "event_count", "head_hash", "key_id", "segment_hashes", "segment_start", "seq", "signature",
)  # fmt: skip
# syslog facility authpriv (10), severity notice (5): security records, routed to a protected file by default
# on most syslog daemons.
_SYSLOG_PRIORITY = 10 * 8 + 5
_SYSLOG_TIMEOUT_SECONDS = 5.0
_TORN_START = '{"created_at":'  # how every entry line begins (canonical JSON, keys sorted)


class WitnessPublishFailed(RuntimeError):
    """At least one sink did not take the entry; the next scheduled run publishes it again."""


@runtime_checkable
class WitnessSink(Protocol):
    name: str

    def publish(self, checkpoint: SignedCheckpoint) -> None: ...


@dataclass(frozen=True)
class WitnessRead:
    """What a verifier read from a witness. `malformed` lines are breaks (someone wrote into the witness);
    `notes` are not (for example a torn last line left by a crash during a write)."""

    source: str
    entries: tuple[SignedCheckpoint, ...]
    malformed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def witness_line(checkpoint: SignedCheckpoint) -> bytes:
    entry = {
        "created_at": checkpoint.created_at,
        "event_count": checkpoint.event_count,
        "head_hash": checkpoint.head_hash,
        "key_id": checkpoint.key_id,
        "segment_hashes": checkpoint.segment_hashes,
        "segment_start": checkpoint.segment_start,
        "seq": checkpoint.seq,
        "signature": checkpoint.signature,
    }
    return canonical_bytes(entry) + b"\n"


def witness_entry_parse(text: str) -> SignedCheckpoint:
    """One witness line (a syslog line may carry a prefix up to the JSON object). Raises ValueError."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object")
    data = json.loads(text[start:])
    if not isinstance(data, dict) or set(data) != set(_FIELDS):
        raise ValueError("not a checkpoint entry")
    ints = (data["seq"], data["event_count"])
    strings = (data["head_hash"], data["created_at"], data["key_id"], data["signature"], data["segment_hashes"])
    start_seq = data["segment_start"]
    if not all(type(v) is int for v in ints) or not all(isinstance(v, str) for v in strings):
        raise ValueError("a field has the wrong type")
    if start_seq is not None and type(start_seq) is not int:
        raise ValueError("segment_start has the wrong type")
    return SignedCheckpoint(
        seq=data["seq"],
        head_hash=data["head_hash"],
        event_count=data["event_count"],
        created_at=data["created_at"],
        key_id=data["key_id"],
        signature=data["signature"],
        segment_start=start_seq,
        segment_hashes=data["segment_hashes"],
    )


def witness_lines_parse(text: str, *, source: str) -> WitnessRead:
    entries: list[SignedCheckpoint] = []
    malformed: list[str] = []
    notes: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            entries.append(witness_entry_parse(line))
        except json.JSONDecodeError as exc:
            if line.startswith(_TORN_START):
                # One O_APPEND write is not torn by concurrency, only by a crash mid-write (the next write ends
                # the line). Its checkpoint is still in the database and is published again by the next run.
                notes.append(f"line {number} of {source} is incomplete (a write cut short) and was ignored")
            else:
                malformed.append(f"line {number} of {source} is not a checkpoint entry ({exc})")
        except ValueError as exc:
            malformed.append(f"line {number} of {source} is not a checkpoint entry ({exc})")
    return WitnessRead(source=source, entries=tuple(entries), malformed=tuple(malformed), notes=tuple(notes))


class FileWitnessSink:
    """An append-only JSON-lines file. On Linux, `chattr +a` on it (as root) makes it append-only even for its
    owner; a deployment that can should also ship it off the host."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else witness_file_path()
        self.name = f"file {self.path}"

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            line = witness_line(checkpoint)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a crash cut the last write short: end that line, so this one stands alone
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            # The new directory entry must be durable too, or a crash could lose the whole file.
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def read(self) -> WitnessRead:
        source = str(self.path)
        if not self.path.exists():
            return WitnessRead(source=source, entries=(), notes=(f"the witness file {source} does not exist",))
        return witness_lines_parse(self.path.read_text(encoding="utf-8", errors="replace"), source=source)


class SyslogWitnessSink:
    """Sends each entry to a syslog host, which keeps it where the database's users cannot reach."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else settings.AUDIT_WITNESS_SYSLOG_ADDRESS
        self.name = f"syslog {self.address}"

    def message(self, checkpoint: SignedCheckpoint) -> bytes:
        return f"<{_SYSLOG_PRIORITY}>{WITNESS_TAG}: ".encode() + witness_line(checkpoint).rstrip(b"\n")

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        message = self.message(checkpoint)
        parts = urlsplit(self.address)
        if parts.scheme in {"udp", "tcp"}:
            if not parts.hostname:
                raise ValueError(f"AUDIT_WITNESS_SYSLOG_ADDRESS {self.address!r} has no host")
            port = parts.port or (514 if parts.scheme == "udp" else 601)
            if parts.scheme == "tcp":
                with socket.create_connection((parts.hostname, port), timeout=_SYSLOG_TIMEOUT_SECONDS) as sock:
                    sock.sendall(message + b"\n")  # RFC 6587 newline framing
                return
            family, kind, proto, _name, target = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_DGRAM)[0]
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(_SYSLOG_TIMEOUT_SECONDS)
                sock.sendto(message, target)
            return
        if parts.scheme not in {"", "unix"}:
            raise ValueError(f"AUDIT_WITNESS_SYSLOG_ADDRESS {self.address!r}: use udp://, tcp:// or a socket path")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(_SYSLOG_TIMEOUT_SECONDS)
            sock.connect(parts.path or self.address)
            sock.send(message)


_BUILTIN_SINKS: dict[str, type[FileWitnessSink] | type[SyslogWitnessSink]] = {
    "file": FileWitnessSink,
    "syslog": SyslogWitnessSink,
}


def witness_file_path() -> Path:
    configured = settings.AUDIT_WITNESS_FILE
    return Path(configured) if configured else Path(settings.ARTIFACT_ROOT) / "audit" / "witness.jsonl"


def witness_sinks() -> list[WitnessSink]:
    sinks: list[WitnessSink] = []
    for name in settings.AUDIT_WITNESS_SINKS:
        builtin = _BUILTIN_SINKS.get(name)
        sink = builtin() if builtin is not None else import_string(name)()
        if not isinstance(sink, WitnessSink):
            raise TypeError(f"AUDIT_WITNESS_SINKS: {name} has no name and publish(checkpoint)")
        sinks.append(sink)
    return sinks


def witness_publish(checkpoint: SignedCheckpoint, sinks: Iterable[WitnessSink] | None = None) -> None:
    """Publish to every sink; one failing sink does not stop the others. Raises WitnessPublishFailed after
    trying them all if any failed."""
    failed: list[str] = []
    for sink in witness_sinks() if sinks is None else sinks:
        try:
            sink.publish(checkpoint)
        except Exception as exc:  # a sink is an outside system: whatever it raises, try the next one
            logger.error("audit witness %s refused checkpoint at seq %s: %s", sink.name, checkpoint.seq, exc)
            failed.append(f"{sink.name}: {exc}")
    if failed:
        raise WitnessPublishFailed(f"checkpoint at seq {checkpoint.seq} not published to " + "; ".join(failed))


def witness_read(path: Path | None = None) -> WitnessRead | None:
    """The witness a verifier compares with: the file at `path`, or the first configured sink that can be read
    back. None when no configured sink can (syslog only: give the verifier a copy of its lines)."""
    if path is not None:
        return FileWitnessSink(path).read()
    for sink in witness_sinks():
        reader = getattr(sink, "read", None)
        if callable(reader):
            read: WitnessRead = reader()
            return read
    return None
