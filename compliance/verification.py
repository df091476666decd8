"""Verification status of a range of the ledger: chain, checkpoints, witness (issue 9, audit range report).

A range is verified without re-reading the whole ledger: it is anchored at the newest signed checkpoint before it
(or at genesis) and followed, link by link and hash by hash, up to the first signed checkpoint at or after its end.
Both checkpoints' Ed25519 signatures are checked against the trusted keys (from the environment, never from the
database), so an edit, insertion, deletion or reordering anywhere inside is caught, and so is a rewrite that
recomputed the hashes, as long as a checkpoint covers the range. A range past the newest checkpoint is reported as
"not covered yet": someone who can write the database could still rewrite or drop its newest events.

The full verification (clinaiops.audit.verify.ledger_verify, owned by the ledger) stays the authority for the
whole ledger; compliance runs it as a job (reports/verification.py).

The witness (issue 8's append-only record of every checkpoint outside the database) is read through the ledger's
clinaiops.audit.witness.witness_read: the range's checkpoints must be there, signed, with the same head hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from clinaiops.audit.chain import GENESIS_HASH, event_canonical
from clinaiops.audit.keys import audit_trusted_public_keys
from clinaiops.audit.models import AuditCheckpoint
from clinaiops.audit.verify import (
    DELETED,
    EDITED,
    INSERTED,
    REORDERED,
    VerificationResult,
    checkpoint_signature_valid,
    checkpoint_signed,
    ledger_verify,
)
from clinaiops.audit.witness import witness_read
from compliance.listings import audit_rows
from governance.ledger_search import LedgerFilters, ResolvedFilters, SeqRange


@dataclass(frozen=True)
class CheckpointInfo:
    seq: int
    head_hash: str
    event_count: int
    created_at: str  # TIMESTAMP_FORMAT, UTC: exactly what the signature covers
    key_id: str
    signature: str
    segment_start: int | None
    segment_hashes: str
    reason: str
    signature_valid: bool

    def as_dict(self) -> dict[str, Any]:
        """The signed fields (what the signature covers, as the ledger's witness writes them) and the verdict."""
        return {
            "seq": self.seq, "head_hash": self.head_hash, "event_count": self.event_count,
            "created_at": self.created_at, "key_id": self.key_id, "signature": self.signature,
            "segment_start": self.segment_start, "segment_hashes": self.segment_hashes, "reason": self.reason,
            "signature_valid": self.signature_valid,
        }  # fmt: skip


@dataclass(frozen=True)
class WitnessStatus:
    available: bool
    source: str = ""
    entries: tuple[dict[str, Any], ...] = ()  # the witness lines for the range's checkpoints, as published
    matches: bool | None = None  # every range checkpoint is witnessed, validly signed, with the same head hash
    missing: tuple[int, ...] = ()  # range checkpoints the witness does not hold (yet)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "available": self.available, "source": self.source, "entries": list(self.entries),
            "matches": self.matches, "missing": list(self.missing), "note": self.note,
        }  # fmt: skip


@dataclass(frozen=True)
class RangeVerification:
    first_seq: int
    last_seq: int
    anchor_seq: int  # 0 means genesis
    covered_to_seq: int | None  # the first checkpoint at or after last_seq, if any
    chain_ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    kind: str = ""
    problem: str = ""
    checkpoints: tuple[CheckpointInfo, ...] = ()
    witness: WitnessStatus = field(default_factory=lambda: WitnessStatus(available=False))

    @property
    def status(self) -> str:
        """ "broken", "verified" (linked and signed at both ends) or "not_covered" (linked, past the newest
        checkpoint)."""
        if not self.chain_ok or any(not c.signature_valid for c in self.checkpoints):
            return "broken"
        if self.witness.matches is False:
            return "broken"
        return "verified" if self.covered_to_seq is not None else "not_covered"

    @property
    def words(self) -> str:
        anchor = "genesis" if self.anchor_seq == 0 else f"the signed checkpoint at seq {self.anchor_seq}"
        if self.status == "broken":
            if not self.chain_ok:
                return f"BROKEN at seq {self.first_broken_seq}: {self.problem}."
            if any(not c.signature_valid for c in self.checkpoints):
                bad = next(c.seq for c in self.checkpoints if not c.signature_valid)
                return f"BROKEN: the checkpoint at seq {bad} has an invalid signature or an untrusted key."
            return f"BROKEN: {self.witness.note or 'the witness disagrees with the database'}."
        if self.status == "verified":
            return (
                f"Verified: every event from {anchor} to the signed checkpoint at seq {self.covered_to_seq} was "
                f"recomputed and linked ({self.events_checked} events), and both ends are signed."
            )
        return (
            f"Linked and hashed from {anchor} to seq {self.last_seq} ({self.events_checked} events), but no signed "
            "checkpoint covers the newest of them yet: someone who can write the database could still rewrite them."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "words": self.words,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "anchor": {"seq": self.anchor_seq, "genesis": self.anchor_seq == 0},
            "covered_to_seq": self.covered_to_seq,
            "chain": {
                "ok": self.chain_ok, "events_checked": self.events_checked,
                "first_broken_seq": self.first_broken_seq, "kind": self.kind, "problem": self.problem,
            },
            "checkpoints": [c.as_dict() for c in self.checkpoints],
            "witness": self.witness.as_dict(),
        }  # fmt: skip


def canonical_rows(first: int, last: int) -> Iterator[tuple[Any, ...]]:
    """The chained fields of events first..last in seq order, timestamps formatted by the database as the chain
    hashes them (the audit listing's reader, without its username column)."""
    span = ResolvedFilters(
        filters=LedgerFilters(), seq_range=SeqRange(first, last), head_seq=last,
        condition=Q(seq__gte=first, seq__lte=last),
    )  # fmt: skip
    for row in audit_rows(span):
        yield row[:3] + row[4:]


def checkpoint_infos(checkpoints: list[AuditCheckpoint]) -> list[CheckpointInfo]:
    trusted = audit_trusted_public_keys()
    infos = []
    for c in checkpoints:
        signed = checkpoint_signed(c)
        infos.append(
            CheckpointInfo(
                seq=c.seq,
                head_hash=c.head_hash,
                event_count=c.event_count,
                created_at=signed.created_at,
                key_id=c.key_id,
                signature=c.signature,
                segment_start=signed.segment_start,
                segment_hashes=signed.segment_hashes,
                reason=c.reason,
                signature_valid=checkpoint_signature_valid(signed, trusted),
            )
        )
    return infos


def range_checkpoints(
    seq_range: SeqRange,
) -> tuple[AuditCheckpoint | None, list[AuditCheckpoint], AuditCheckpoint | None]:
    """(anchor, inside, cover): the newest checkpoint before the range, those inside it, the first at or after its
    end (which may be the last one inside)."""
    anchor = AuditCheckpoint.objects.filter(seq__lt=seq_range.first).order_by("-seq").first()
    cover = AuditCheckpoint.objects.filter(seq__gte=max(seq_range.last, seq_range.first)).order_by("seq").first()
    inside = list(
        AuditCheckpoint.objects.filter(seq__gte=seq_range.first, seq__lt=cover.seq if cover else seq_range.last + 1)
    )
    return anchor, inside, cover


def range_verify(seq_range: SeqRange, *, progress: Callable[[int], None] | None = None) -> RangeVerification:
    """Verify events seq_range.first..last, anchored and covered by signed checkpoints (see the module docstring)."""
    anchor, inside, cover = range_checkpoints(seq_range)
    chosen = [c for c in (anchor, *inside, cover) if c is not None]
    unique = {c.seq: c for c in chosen}
    infos = checkpoint_infos(sorted(unique.values(), key=lambda c: c.seq))
    heads = {c.seq: c.head_hash for c in infos}
    anchor_seq = anchor.seq if anchor else 0
    expected_prev = anchor.head_hash if anchor else GENESIS_HASH
    end = cover.seq if cover else seq_range.last
    expected = anchor_seq + 1
    checked = 0
    sha256 = hashlib.sha256
    failure: tuple[int | None, str, str] | None = None
    for row in canonical_rows(expected, end):
        seq = row[0]
        if seq != expected:
            failure = (
                (expected, DELETED, f"seq {expected}–{seq - 1} missing")
                if seq > expected
                else (seq, REORDERED, f"seq {seq} appears after seq {expected - 1}")
            )
            break
        digest = sha256(event_canonical(*row[:12])).hexdigest()
        if row[11] != expected_prev:
            failure = (seq, INSERTED, f"seq {seq} does not link to seq {seq - 1}")
            break
        if digest != row[12]:
            failure = (seq, EDITED, f"seq {seq}: content does not match its hash")
            break
        head = heads.get(seq)
        if head is not None and head != row[12]:
            failure = (seq, EDITED, f"seq {seq} does not match the signed checkpoint over it")
            break
        expected_prev = row[12]
        expected += 1
        checked += 1
        if progress is not None and checked % 5000 == 0:
            progress(checked)
    if failure is None and expected <= end:
        failure = (expected, DELETED, f"the ledger ends at seq {expected - 1}, before seq {end}")
    broken_seq, kind, problem = failure if failure is not None else (None, "", "")
    return RangeVerification(
        first_seq=seq_range.first,
        last_seq=seq_range.last,
        anchor_seq=anchor_seq,
        covered_to_seq=cover.seq if cover else None,
        chain_ok=failure is None,
        events_checked=checked,
        first_broken_seq=broken_seq,
        kind=kind,
        problem=problem,
        checkpoints=tuple(infos),
        witness=witness_status(infos),
    )


# --- The witness ----------------------------------------------------------------------------------------


def witness_status(checkpoints: list[CheckpointInfo]) -> WitnessStatus:
    """The witness entries for these checkpoints, and whether they agree with the database (same head hash, valid
    signature). A checkpoint made in the last moments may not be published yet: it is listed as missing, which the
    report shows, but it is not a break; the full verification (ledger_verify) judges the whole witness."""
    witness = witness_read()
    if witness is None:
        return WitnessStatus(
            available=False, note="No readable checkpoint witness is configured (AUDIT_WITNESS_SINKS)."
        )
    trusted = audit_trusted_public_keys()
    wanted = {c.seq: c for c in checkpoints}
    found = {entry.seq: entry for entry in witness.entries if entry.seq in wanted}
    disagree = [
        seq
        for seq, entry in found.items()
        if entry.head_hash != wanted[seq].head_hash or not checkpoint_signature_valid(entry, trusted)
    ]
    entries = tuple(
        {
            "seq": e.seq,
            "head_hash": e.head_hash,
            "event_count": e.event_count,
            "created_at": e.created_at,
            "key_id": e.key_id,
            "signature": e.signature,
            "segment_start": e.segment_start,
            "segment_hashes": e.segment_hashes,
        }
        for e in sorted(found.values(), key=lambda e: e.seq)
    )
    note = "; ".join((*witness.notes, *witness.malformed))
    if disagree:
        note = f"the witness disagrees with the database at seq {', '.join(map(str, disagree))}" + (
            f"; {note}" if note else ""
        )
    return WitnessStatus(
        available=True,
        source=witness.source,
        entries=entries,
        matches=(not disagree and not witness.malformed) if checkpoints else None,
        missing=tuple(seq for seq in wanted if seq not in found),
        note=note,
    )


# --- The full verification, with progress --------------------------------------------------------------


def ledger_verify_with_progress(progress: Callable[[int], None]) -> VerificationResult:
    """clinaiops.audit.verify.ledger_verify with a row counter for the job's progress."""
    return ledger_verify(progress=progress)
