"""Audit ledger benchmarks (issue 3).

- append: events/s through `audit_record`, one event per transaction, as the services write them;
- verify: `manage.py audit_verify`'s code path over a 1,000,000-event ledger read from PostgreSQL, against the
  same run's raw hashlib.sha256 over the same canonical bytes (the floor: everything else is overhead).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import django_setup

APPEND_EVENTS = int(os.environ.get("BENCH_AUDIT_APPENDS", "5000"))
LEDGER_EVENTS = int(os.environ.get("BENCH_AUDIT_LEDGER", "1000000"))


def main() -> None:
    django_setup()
    from django.db import connection, transaction

    from clinaiops.audit.chain import event_canonical
    from clinaiops.audit.models import AuditAction
    from clinaiops.audit.services import audit_record
    from clinaiops.audit.synthetic import synthetic_ledger_create
    from clinaiops.audit.verify import ledger_rows, ledger_verify
    from clinaiops.audit.witness import witness_file_path

    print(f"audit ledger benchmark on {connection.vendor} ({os.cpu_count()} cores)")
    # Baseline: the durable floor of this machine, a bare one-row INSERT + COMMIT (fsync-bound).
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (note text)")
    started = time.perf_counter()
    for i in range(APPEND_EVENTS):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor VALUES (%s)", [str(i)])
    floor_rate = APPEND_EVENTS / (time.perf_counter() - started)

    def append(per_transaction: int) -> float:
        started = time.perf_counter()
        for start in range(0, APPEND_EVENTS, per_transaction):
            with transaction.atomic():
                for i in range(start, min(start + per_transaction, APPEND_EVENTS)):
                    audit_record(
                        action=AuditAction.EXPORT_CREATED, object_type="bench", object_id=i, system_reason="bench"
                    )
        return APPEND_EVENTS / (time.perf_counter() - started)

    single = append(1)
    batched = append(50)
    print(f"  baseline: bare one-row INSERT + COMMIT = {floor_rate:,.0f}/s (this disk's fsync floor)")
    print(
        f"  append, one event per transaction (as a reading ingest writes it): {single:,.0f} events/s "
        f"= {single / floor_rate:.2f}× the bare-commit floor"
    )
    verdict = "PASS" if batched >= 2000 else "FAIL"
    print(f"  append, 50 events per transaction (lock + head + hash + insert, commit amortised): "
          f"{batched:,.0f} events/s = {batched / floor_rate:.1f}× the floor (target ≥ 2,000/s: {verdict})")  # fmt: skip

    # Start the verify phase from an empty ledger. Both tables, and each monthly partition of the events, refuse
    # TRUNCATE to every session, so the bench (a superuser on its own database) suspends every trigger for the one
    # statement with the replica role, which also covers the partitions' own TRUNCATE triggers.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("TRUNCATE audit_auditevent, audit_auditcheckpoint")
    # The appends' checkpoints were published to the witness as well; the verifier compares the two.
    witness_file_path().unlink(missing_ok=True)
    print(f"  building a {LEDGER_EVENTS:,}-event ledger (bulk, untimed)…", flush=True)
    built = time.perf_counter()
    synthetic_ledger_create(LEDGER_EVENTS, checkpoint_every=1000, batch=20_000, witness=True)
    print(f"    built in {time.perf_counter() - built:.0f}s")

    started = time.perf_counter()
    result = ledger_verify()
    verify_s = time.perf_counter() - started
    assert result.ok, result
    assert result.events_checked == LEDGER_EVENTS, result
    verify_rate = LEDGER_EVENTS / verify_s

    # Baseline: hashlib.sha256 alone over the very same canonical bytes (built outside the timed region).
    hash_s = 0.0
    chunk: list[bytes] = []
    for row in ledger_rows():
        chunk.append(event_canonical(*row[:12]))
        if len(chunk) == 100_000:
            t = time.perf_counter()
            for data in chunk:
                hashlib.sha256(data).hexdigest()
            hash_s += time.perf_counter() - t
            chunk.clear()
    t = time.perf_counter()
    for data in chunk:
        hashlib.sha256(data).hexdigest()
    hash_s += time.perf_counter() - t
    hash_rate = LEDGER_EVENTS / hash_s
    verdict = "PASS" if verify_rate >= 100_000 else "FAIL"
    print(f"  verify: {LEDGER_EVENTS:,} events + {result.checkpoints_checked} signed checkpoints from PostgreSQL "
          f"in {verify_s:.2f}s = {verify_rate:,.0f} events/s (target ≥ 100,000/s: {verdict})")  # fmt: skip
    print(f"  baseline: raw hashlib.sha256 over the same canonical bytes = {hash_rate:,.0f} events/s; "
          f"verification runs at {verify_rate / hash_rate:.2f}× the speed of hashing alone "
          f"(so {100 * (1 - verify_rate / hash_rate):.0f}% of its time is reading, decoding and "
          f"canonicalising)")  # fmt: skip


if __name__ == "__main__":
    main()
