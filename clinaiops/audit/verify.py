"""Ledger verification: recompute every hash and link in seq order, check every signed checkpoint in the database
and in the witness, and say where the ledger first breaks and how.

The pass streams rows straight from the database with raw SQL (a server-side cursor on PostgreSQL; every column
read as text, so no edited value can make a reader raise) and builds each canonical form with one %-format, so a
million events verify in seconds. Only when something is wrong does it look further (indexed lookups) to tell an
edit from a deletion, an insertion or a reordering.

What the witness adds (docs/security.md): a checkpoint is published outside the database as it is made, so a
tail cut together with its checkpoints, or a history rewritten with recomputed hashes, is caught by comparing the
two. What stays undetectable: the events after the newest witnessed checkpoint (fewer than
AUDIT_CHECKPOINT_EVERY, and at most AUDIT_CHECKPOINT_INTERVAL_SECONDS of them) can be dropped, or rewritten by
someone who can recompute SHA-256.

After `manage.py ledger_archive` detached the oldest months, the ledger starts after seq 1: the verification then
starts from the signed (and witnessed) checkpoint at exactly the seq before its first event, whose head hash takes
the genesis hash's place, and says so in a note. A ledger that starts after seq 1 without such a checkpoint is a
truncation.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection

from clinaiops.audit.chain import GENESIS_HASH, SEGMENT_MAX_EVENTS, TIMESTAMP_FORMAT, SignedCheckpoint, event_canonical
from clinaiops.audit.keys import audit_trusted_public_keys
from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent
from clinaiops.audit.witness import WitnessRead, witness_read

# The ledger's own record of an archive (`ledger_archive`): object id = the last archived seq.
ARCHIVE_OBJECT_TYPE = "audit_ledger"
EDITED = "edited event"
DELETED = "deleted event"
INSERTED = "inserted event"
REORDERED = "reordered events"
TRUNCATED = "truncation"
EMPTY = "empty ledger"
FORGED_CHECKPOINT = "forged checkpoint"
DELETED_CHECKPOINT = "deleted checkpoint"
FORGED_WITNESS = "forged witness entry"

# seq, recorded_at (formatted UTC text), actor_id, actor_role, action, object_type, object_id, outcome,
# request_id, ip, payload (canonical text), prev_hash, hash
EventRow = tuple[int, str, int | None, str, str, str, str, str, str, str | None, str, str, str]
# seq, head_hash, event_count, created_at (formatted), key_id, signature (base64)[, segment_start, segment_hashes]
CheckpointRow = tuple[int, str, int, str, str, str] | tuple[int, str, int, str, str, str, int | None, str]


@dataclass(frozen=True)
class VerificationResult:
    """The verdict on the ledger. `ok` is False for any break, an empty ledger, or a disagreement with the witness;
    then `first_broken_seq` (None when no seq applies, e.g. a garbled witness line), `kind` (one of the constants
    above) and `problem` (one sentence naming the seq) say what. `notes` are warnings that do not break it."""

    ok: bool
    events_checked: int
    checkpoints_checked: int = 0
    first_broken_seq: int | None = None
    kind: str = ""
    problem: str = ""
    # Where the witness was read ("" when no readable witness is configured), how many of its entries were
    # checked, and the newest seq it vouches for.
    witness_source: str = ""
    witness_entries: int = 0
    witness_head_seq: int | None = None
    # Signed checkpoints in the database that the witness does not hold (a crash between commit and publish, or a
    # witness that lost lines); the next scheduled checkpoint run publishes them again.
    unwitnessed_checkpoints: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    # When older months were archived (`manage.py ledger_archive`): the seq of the signed checkpoint the verification
    # started from, events 1..archived_through being outside the database. 0 when it started from the genesis hash.
    archived_through: int = 0

    @property
    def witnessed(self) -> bool:
        return bool(self.witness_source)


def _signed(row: CheckpointRow | SignedCheckpoint) -> SignedCheckpoint:
    if isinstance(row, SignedCheckpoint):
        return row
    seq, head_hash, count, created_at, key_id, signature = row[:6]
    segment_start, segment = (row[6], row[7]) if len(row) == 8 else (None, "")  # type: ignore[misc]
    return SignedCheckpoint(seq, head_hash, count, created_at, key_id, signature, segment_start, segment)


def checkpoint_signature_valid(checkpoint: SignedCheckpoint, trusted: Mapping[str, Ed25519PublicKey]) -> bool:
    key = trusted.get(checkpoint.key_id)
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(checkpoint.signature, validate=True), checkpoint.message())
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoints_verify(
    checkpoints: Iterable[CheckpointRow | SignedCheckpoint], trusted: Mapping[str, Ed25519PublicKey]
) -> tuple[dict[int, str], VerificationResult | None]:
    """Check every checkpoint's signature; return their heads by seq, or the first forgery."""
    heads: dict[int, str] = {}
    for row in checkpoints:
        checkpoint = _signed(row)
        if not checkpoint_signature_valid(checkpoint, trusted):
            problem = (
                f"checkpoint at seq {checkpoint.seq} has an invalid signature or an untrusted key {checkpoint.key_id!r}"
            )
            return heads, VerificationResult(False, 0, len(heads), checkpoint.seq, FORGED_CHECKPOINT, problem)
        heads[checkpoint.seq] = checkpoint.head_hash
    return heads, None


def _content_ok(row: EventRow, seq: int | None = None) -> bool:
    fields = (row[0] if seq is None else seq, *row[1:12])
    try:
        canonical = event_canonical(*fields)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a value of the wrong type (SQLite keeps whatever was written)
        return False
    return hashlib.sha256(canonical).hexdigest() == row[12]


def _diagnose(
    row: EventRow,
    expected_seq: int,
    expected_prev: str,
    lookup: Callable[[str], int | None],
    signed: Mapping[int, SignedCheckpoint],
) -> tuple[int, str, str]:
    """Name the kind of break at the first anomalous row: (seq to report, kind, problem)."""
    seq, prev_hash = row[0], row[11]
    if prev_hash != expected_prev:
        linked_to = lookup(prev_hash)
        if linked_to is not None and linked_to > expected_seq - 1:
            return seq, REORDERED, f"seq {seq} links to seq {linked_to}, which comes after it"
        if linked_to is not None and linked_to < expected_seq - 1:
            return seq, INSERTED, f"seq {seq} links past seq {expected_seq - 1}: an event was inserted before it"
        if _content_ok(row, seq + 1):
            return seq, DELETED, f"seq {seq} was renumbered down: an event before it was deleted"
        if _content_ok(row):
            # seq is intact but links to a hash no event has any more, while seq - 1 verified: seq - 1 was changed
            # and its hash recomputed. The one other reading, that seq's own prev_hash was rewritten and seq
            # rehashed, is told apart by the signed prefix of seq - 1's hash when a checkpoint covers it.
            previous = seq - 1
            signed_prefix = next((p for c in signed.values() if (p := c.prefix_of(previous)) is not None), None)
            if signed_prefix is not None and expected_prev.startswith(signed_prefix):
                return seq, EDITED, f"seq {seq}: its prev_hash was rewritten and its hash recomputed"
            return (
                previous,
                EDITED,
                (f"seq {previous} was changed and its hash recomputed: seq {seq} still links to its original hash"),
            )
        return seq, EDITED, f"seq {seq}: content does not match its hash and it does not link to its predecessor"
    if _content_ok(row, seq - 1):
        return seq, INSERTED, f"seq {seq} was renumbered up: an event was inserted before it"
    return seq, EDITED, f"seq {seq}: content does not match its hash"


# seq, canonical bytes, prev_hash, hash: all the hot loop needs.
LinkRow = tuple[int, bytes, str, str]


def links_from_rows(rows: Iterable[EventRow]) -> Iterator[LinkRow]:
    for row in rows:
        try:
            canonical = event_canonical(*row[:12])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            canonical = b""  # a value of the wrong type: never hashes to anything, so it reads as an edit
        yield row[0], canonical, row[11], row[12]


def _witness_entries(
    witness: WitnessRead | None, trusted: Mapping[str, Ed25519PublicKey]
) -> tuple[dict[int, SignedCheckpoint], tuple[int | None, str, str] | None]:
    """The witness's entries by seq, or the first problem with it as (seq, kind, problem)."""
    entries: dict[int, SignedCheckpoint] = {}
    if witness is None:
        return entries, None
    if witness.malformed:
        return entries, (None, FORGED_WITNESS, witness.malformed[0])
    for entry in witness.entries:
        if not checkpoint_signature_valid(entry, trusted):
            return entries, (entry.seq, FORGED_WITNESS, f"the witness entry for seq {entry.seq} in {witness.source} "
                             "has an invalid signature or an untrusted key")  # fmt: skip
        known = entries.get(entry.seq)
        if known is not None and known != entry:
            return entries, (entry.seq, FORGED_CHECKPOINT, f"the witness holds two different signed checkpoints for "
                             f"seq {entry.seq}")  # fmt: skip
        entries[entry.seq] = entry
    return entries, None


def _rehashed_edit(checkpoint: SignedCheckpoint, recent: Sequence[str]) -> int | None:
    """The first of the `recent` hashes (of the events up to the checkpoint's seq) that differs from the prefix the
    checkpoint signed. Every checkpoint before it matched its head, so the events before its segment are
    authentic."""
    first = checkpoint.seq - len(recent) + 1
    for event_seq, event_hash in enumerate(recent, start=first):
        prefix = checkpoint.prefix_of(event_seq)
        if prefix is not None and not event_hash.startswith(prefix):
            return event_seq
    return None


def chain_verify(
    links: Iterable[LinkRow],
    *,
    checkpoints: Iterable[CheckpointRow | SignedCheckpoint] = (),
    witness: WitnessRead | None = None,
    trusted_keys: Mapping[str, Ed25519PublicKey] | None = None,
    lookup: Callable[[str], int | None] = lambda _hash: None,
    fetch_row: Callable[[int], EventRow | None] = lambda _seq: None,
    archives: Iterable[int] = (),
) -> VerificationResult:
    """Verify links given in ascending seq order against the database's checkpoints and the witness. Only on a
    break, `fetch_row(seq)` and `lookup(hash)` are used to name its kind. `archives`: the seqs through which the
    ledger's own `audit.archived` events say its oldest months were archived (the only way a ledger may start after
    seq 1)."""
    trusted = trusted_keys or {}
    database: dict[int, SignedCheckpoint] = {}
    witnessed: dict[int, SignedCheckpoint] = {}
    archived = 0  # events 1..archived are archived, and the verification starts from the checkpoint at `archived`

    def result(checked: int, seq: int | None = None, kind: str = "", problem: str = "") -> VerificationResult:
        return VerificationResult(
            ok=not kind,
            events_checked=max(checked - archived, 0),
            checkpoints_checked=len(database),
            first_broken_seq=seq,
            kind=kind,
            problem=problem,
            witness_source=witness.source if witness is not None else "",
            witness_entries=len(witnessed),
            witness_head_seq=max(witnessed, default=None),
            archived_through=archived,
        )

    for given in checkpoints:
        stored_checkpoint = _signed(given)
        if not checkpoint_signature_valid(stored_checkpoint, trusted):
            problem = (
                f"checkpoint at seq {stored_checkpoint.seq} has an invalid signature or an untrusted key "
                f"{stored_checkpoint.key_id!r}"
            )
            return result(0, stored_checkpoint.seq, FORGED_CHECKPOINT, problem)
        database[stored_checkpoint.seq] = stored_checkpoint
    witnessed, failure = _witness_entries(witness, trusted)
    if failure is not None:
        return result(0, *failure)
    for seq, entry in witnessed.items():
        held = database.get(seq)
        if held is not None and held.head_hash != entry.head_hash:
            # Both are signed: the signing key re-signed a rewritten ledger. The witness, published first, stands.
            problem = f"the database's signed checkpoint at seq {seq} differs from the one witnessed when it was made"
            return result(0, seq, FORGED_CHECKPOINT, problem)
    signed = {**database, **witnessed}

    expected_prev = GENESIS_HASH
    expected_seq = 1
    # Archived months (`manage.py ledger_archive`): the ledger then starts after seq 1, and the signed checkpoint at
    # exactly the seq before its first event stands in for the genesis hash. Without one, the missing head is a
    # truncation like a missing tail.
    stream = iter(links)
    head = next(stream, None)
    if head is not None:
        stream = chain((head,), stream)
        first_seq = head[0]
        if isinstance(first_seq, int) and first_seq > 1:
            anchor = signed.get(first_seq - 1)
            if first_seq - 1 not in set(archives):
                # A signed, witnessed checkpoint alone is not enough: one is made every AUDIT_CHECKPOINT_EVERY
                # events, so an owner who dropped the oldest events down to any of them would pass as an archive.
                # `ledger_archive` records the archive in the chain itself, which no one can add to the past.
                problem = (
                    f"the ledger starts at seq {first_seq}: events 1–{first_seq - 1} are missing and no archive of "
                    "them is recorded in the ledger (an `audit.archived` event made by ledger_archive)"
                )
                return result(0, 1, TRUNCATED, problem)
            if anchor is None:
                problem = (
                    f"the ledger starts at seq {first_seq}: events 1–{first_seq - 1} are missing and no signed "
                    f"checkpoint at seq {first_seq - 1} anchors what remains (archived without one, or cut)"
                )
                return result(0, 1, TRUNCATED, problem)
            if witness is not None and anchor.seq not in witnessed:
                problem = (
                    f"the ledger starts at seq {first_seq}: the checkpoint at seq {anchor.seq} that would anchor it "
                    f"is not in the witness {witness.source}"
                )
                return result(0, 1, TRUNCATED, problem)
            archived = anchor.seq
            expected_prev = anchor.head_hash
            expected_seq = first_seq
    sha256 = hashlib.sha256
    recent: deque[str] = deque(maxlen=SEGMENT_MAX_EVENTS)  # the newest hashes, for naming a rehashed edit
    remember = recent.append
    for seq, canonical, prev_hash, stored in stream:
        if seq != expected_seq:
            checked = expected_seq - 1
            if not isinstance(seq, int) or seq < expected_seq:
                return result(checked, expected_seq, REORDERED, f"seq {seq} appears after seq {checked}")
            moved = lookup(prev_hash)
            if moved is not None and moved not in {checked, seq}:
                return result(checked, expected_seq, EDITED, f"seq {expected_seq} was renumbered to seq {moved}")
            return result(checked, expected_seq, DELETED, f"seq {expected_seq}–{seq - 1} missing")
        if prev_hash != expected_prev or sha256(canonical).hexdigest() != stored:
            row = fetch_row(seq)
            if row is None:
                return result(expected_seq - 1, seq, EDITED, f"seq {seq}: content does not match its hash")
            at, kind, problem = _diagnose(row, expected_seq, expected_prev, lookup, signed)
            return result(at - 1, at, kind, problem)
        remember(stored)
        checkpoint = signed.get(seq)
        if checkpoint is not None and checkpoint.head_hash != stored:
            edited = _rehashed_edit(checkpoint, recent)
            if edited is not None:
                problem = (
                    f"seq {edited} differs from what the checkpoint at seq {checkpoint.seq} signed, and every hash "
                    "after it was recomputed to hide the change"
                )
                return result(edited - 1, edited, EDITED, problem)
            return result(expected_seq - 1, seq, EDITED, f"seq {seq} does not match the signed checkpoint over it")
        expected_prev = stored
        expected_seq += 1
    last = expected_seq - 1
    newest = max(signed.values(), key=lambda c: c.event_count, default=None)
    missing = sorted(seq for seq in witnessed if seq not in database)
    if newest is not None and newest.event_count > last:
        where = "the witness" if newest.seq in witnessed else "the database"
        lost = f"; the database lacks the witnessed checkpoints at seq {_seqs(missing)}" if missing else ""
        problem = (
            f"the ledger ends at seq {last} but {where} holds a signed checkpoint over {newest.event_count} "
            f"events (seq {newest.seq}){lost}"
        )
        return result(last, last + 1, TRUNCATED, problem)
    if last == 0:
        return result(0, None, EMPTY, "the ledger is empty: nothing shows that it was never written")
    if missing:
        problem = f"the witnessed checkpoints at seq {_seqs(missing)} are missing from the database"
        return result(last, missing[0], DELETED_CHECKPOINT, problem)
    notes = list(witness.notes) if witness is not None else []
    if archived:
        notes.append(
            f"verified from the signed checkpoint at seq {archived}: events 1–{archived} are archived (not in this "
            "database) and were not checked here"
        )
    unwitnessed: tuple[int, ...] = ()
    if witness is None:
        notes.append("no readable witness is configured: a tail cut together with its checkpoints would go unseen")
    else:
        unwitnessed = tuple(sorted(seq for seq in database if seq not in witnessed))
        if unwitnessed:
            notes.append(f"signed checkpoints not in the witness yet: seq {_seqs(list(unwitnessed))}")
    return replace(result(last), unwitnessed_checkpoints=unwitnessed, notes=tuple(notes))


def _seqs(seqs: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(s) for s in seqs[:limit])
    return shown + (f" and {len(seqs) - limit} more" if len(seqs) > limit else "")


# --- Reading the ledger from the database ---------------------------------------------------------------

# Every column is read as text: to_char yields NULL for 'infinity', hence the fallback; on SQLite a CAST keeps
# Django's converters from parsing (and raising on) whatever an edit left in a timestamp column.
_PG_TEXT_TIME = "coalesce(to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), {0}::text)"
_PG_ROWS = (
    "SELECT seq, " + _PG_TEXT_TIME.format("recorded_at") + ", actor_id, actor_role, action, object_type, object_id,"  # noqa: S608
    " outcome, request_id, host(ip), payload, prev_hash, hash FROM audit_auditevent"
)
_SQLITE_ROWS = (
    "SELECT seq, CAST(recorded_at AS TEXT), actor_id, actor_role, action, object_type, object_id, outcome,"
    " request_id, ip, payload, prev_hash, hash FROM audit_auditevent"
)
_CHECKPOINT_COLUMNS = "seq, head_hash, event_count, {0}, key_id, signature, segment_start, segment_hashes"
_PG_CHECKPOINTS = (
    "SELECT " + _CHECKPOINT_COLUMNS.format(_PG_TEXT_TIME.format("created_at")) + " FROM audit_auditcheckpoint"  # noqa: S608
)
_SQLITE_CHECKPOINTS = (
    "SELECT " + _CHECKPOINT_COLUMNS.format("CAST(created_at AS TEXT)") + " FROM audit_auditcheckpoint"  # noqa: S608
)


def _sqlite_timestamp(value: object) -> str:
    """Django stores aware datetimes in SQLite as naive UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]"."""
    text = str(value).replace(" ", "T")
    if "." not in text:
        text += ".000000"
    return text + "Z"


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _sqlite_row(row: Sequence[object]) -> EventRow:
    """SQLite keeps whatever type was written into a column: normalise, so an edit reads as a mismatch."""
    seq, recorded_at, actor_id, *strings, ip, payload, prev_hash, digest = row
    return (
        seq, _sqlite_timestamp(recorded_at), actor_id, *(_text(s) for s in strings),
        None if ip is None else _text(ip), _text(payload), _text(prev_hash), _text(digest),
    )  # type: ignore[return-value]  # fmt: skip


def _stream(sql: str, batch: int) -> Iterator[tuple[object, ...]]:
    cursor = connection.chunked_cursor()  # a server-side cursor on PostgreSQL: constant memory
    try:
        cursor.execute(sql)
        while chunk := cursor.fetchmany(batch):
            yield from chunk
    finally:
        cursor.close()


def ledger_rows(batch: int = 10_000) -> Iterator[EventRow]:
    """Full rows in seq order (the Python canonicalisation path)."""
    if connection.vendor == "postgresql":
        yield from _stream(_PG_ROWS + " ORDER BY seq", batch)  # type: ignore[misc]
    else:
        for row in _stream(_SQLITE_ROWS + " ORDER BY seq", batch):
            yield _sqlite_row(row)


def ledger_row(seq: int) -> EventRow | None:
    with connection.cursor() as cursor:
        base = _PG_ROWS if connection.vendor == "postgresql" else _SQLITE_ROWS
        cursor.execute(base + " WHERE seq = %s", [seq])
        row = cursor.fetchone()
    if row is None:
        return None
    if connection.vendor != "postgresql":
        return _sqlite_row(row)
    return tuple(row)  # type: ignore[return-value]


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) or value is None else -1


def ledger_checkpoints() -> list[SignedCheckpoint]:
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute((_PG_CHECKPOINTS if postgres else _SQLITE_CHECKPOINTS) + " ORDER BY seq")
        rows = cursor.fetchall()
    checkpoints = []
    for seq, head_hash, count, created_at, key_id, signature, segment_start, segment in rows:
        checkpoints.append(
            SignedCheckpoint(
                seq=seq if isinstance(seq, int) else -1,
                head_hash=_text(head_hash),
                event_count=count if isinstance(count, int) else -1,
                created_at=_text(created_at) if postgres else _sqlite_timestamp(created_at),
                key_id=_text(key_id),
                signature=_text(signature),
                segment_start=_int_or_none(segment_start),
                segment_hashes=_text(segment),
            )
        )
    return checkpoints


def checkpoint_signed(checkpoint: AuditCheckpoint) -> SignedCheckpoint:
    """A checkpoint row as the verifier checks it (what the signature covers)."""
    return SignedCheckpoint(
        seq=checkpoint.seq,
        head_hash=checkpoint.head_hash,
        event_count=checkpoint.event_count,
        created_at=checkpoint.created_at.strftime(TIMESTAMP_FORMAT),
        key_id=checkpoint.key_id,
        signature=checkpoint.signature,
        segment_start=checkpoint.segment_start,
        segment_hashes=checkpoint.segment_hashes,
    )


def audit_checkpoint_signature_valid(checkpoint: AuditCheckpoint) -> bool:
    """Whether a stored checkpoint's signature verifies against the trusted keys (for pages and reports)."""
    return checkpoint_signature_valid(checkpoint_signed(checkpoint), audit_trusted_public_keys())


def ledger_lookup(hash_hex: str) -> int | None:
    seq: int | None = AuditEvent.objects.filter(hash=hash_hex).values_list("seq", flat=True).first()
    return seq


def _counted(rows: Iterable[EventRow], progress: Callable[[int], None], every: int) -> Iterator[EventRow]:
    for count, row in enumerate(rows, start=1):
        if count % every == 0:
            progress(count)
        yield row


def ledger_verify(
    *, witness_path: Path | None = None, progress: Callable[[int], None] | None = None, progress_every: int = 10_000
) -> VerificationResult:
    """Verify the database's ledger and checkpoints against the trusted keys and the witness (the configured one,
    or the witness file at `witness_path`). `progress(rows read)` is called every `progress_every` rows."""
    # The witness is read first: an entry is published only after its checkpoint commits, so everything it
    # names is already in the database snapshot read next, and a checkpoint made meanwhile cannot look cut.
    witness = witness_read(witness_path)
    rows = ledger_rows() if progress is None else _counted(ledger_rows(), progress, progress_every)
    return chain_verify(
        links_from_rows(rows),
        checkpoints=ledger_checkpoints(),
        witness=witness,
        trusted_keys=audit_trusted_public_keys(),
        lookup=ledger_lookup,
        fetch_row=ledger_row,
        archives=ledger_archives(),
    )


def ledger_archives() -> list[int]:
    """The seqs through which `audit.archived` events say the oldest months were archived (indexed: object type and
    id). Rows only: the chain verification streams every event, these included, so a forged one is a break."""
    ids = AuditEvent.objects.filter(object_type=ARCHIVE_OBJECT_TYPE, action=AuditAction.LEDGER_ARCHIVED).values_list(
        "object_id", flat=True
    )
    return [int(i) for i in ids if i.isdigit()]
