"""The witness outside the database: what each sink writes, and when."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from clinaiops.audit.chain import SignedCheckpoint
from clinaiops.audit.keys import audit_trusted_public_keys
from clinaiops.audit.models import AuditAction, AuditCheckpoint
from clinaiops.audit.services import audit_checkpoint_create, audit_record
from clinaiops.audit.verify import checkpoint_signature_valid, ledger_verify
from clinaiops.audit.witness import SyslogWitnessSink, witness_entry_parse, witness_file_path

RECEIVED: list[SignedCheckpoint] = []


class ListSink:
    """A deployment's own sink (WORM storage, say), named by dotted path in AUDIT_WITNESS_SINKS."""

    name = "list"

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        RECEIVED.append(checkpoint)


class BrokenSink:
    name = "broken"

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        raise OSError("the WORM bucket is unreachable")


def _events(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(action=AuditAction.EXPORT_CREATED, object_type="test", object_id=i, system_reason="test")


def test_each_checkpoint_is_one_signed_json_line_appended_to_the_witness_file(transactional_db: None) -> None:
    _events(3)
    first = audit_checkpoint_create()
    _events(2)
    second = audit_checkpoint_create()
    assert first is not None and second is not None
    path = witness_file_path()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == [first.seq, second.seq] == [3, 6]
    assert set(entries[0]) == {
        "seq", "head_hash", "event_count", "created_at", "key_id", "signature", "segment_start", "segment_hashes",
    }  # fmt: skip
    assert entries[1]["head_hash"] == second.head_hash and entries[1]["event_count"] == 6
    # Each line proves itself: its signature verifies with the public key alone.
    trusted = audit_trusted_public_keys()
    assert all(checkpoint_signature_valid(witness_entry_parse(line), trusted) for line in lines)
    assert not stat.S_IMODE(path.stat().st_mode) & stat.S_IWOTH


def test_a_checkpoint_that_rolls_back_is_never_witnessed(transactional_db: None) -> None:
    _events(3)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert audit_checkpoint_create() is not None
        raise RuntimeError("the transaction around the checkpoint fails")
    assert not AuditCheckpoint.objects.exists()
    assert not witness_file_path().exists()
    assert ledger_verify().ok


def test_a_configured_sink_class_receives_every_checkpoint_and_a_failing_one_stops_nothing(
    transactional_db: None, settings: Any
) -> None:
    RECEIVED.clear()
    settings.AUDIT_WITNESS_SINKS = ["tests.audit.test_witness.BrokenSink", "file", "tests.audit.test_witness.ListSink"]
    _events(4)
    checkpoint = audit_checkpoint_create()
    assert checkpoint is not None and AuditCheckpoint.objects.filter(seq=4).exists()
    assert [c.seq for c in RECEIVED] == [4]
    assert len(witness_file_path().read_text().splitlines()) == 1


def test_the_syslog_sink_sends_a_line_the_verifier_can_read_back(transactional_db: None, settings: Any) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    settings.AUDIT_WITNESS_SINKS = ["syslog"]
    settings.AUDIT_WITNESS_SYSLOG_ADDRESS = f"udp://127.0.0.1:{receiver.getsockname()[1]}"
    try:
        _events(2)
        checkpoint = audit_checkpoint_create()
        datagram = receiver.recv(65536).decode()
    finally:
        receiver.close()
    assert checkpoint is not None
    assert datagram.startswith("<85>clinaiops-audit-witness: {")  # authpriv.notice
    entry = witness_entry_parse(datagram)
    assert (entry.seq, entry.head_hash) == (checkpoint.seq, checkpoint.head_hash)
    assert checkpoint_signature_valid(entry, audit_trusted_public_keys())


def test_the_syslog_sink_reaches_a_local_socket(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    checkpoint = SignedCheckpoint(7, "ab" * 32, 7, "2026-01-01T00:00:00.000000Z", "k", "c2ln", 5, "a" * 24)
    try:
        SyslogWitnessSink(str(path)).publish(checkpoint)
        assert witness_entry_parse(receiver.recv(65536).decode()) == checkpoint
    finally:
        receiver.close()
        os.unlink(path)
