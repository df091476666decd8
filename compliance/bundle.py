"""The signed evidence bundle (DESIGN §5, issue 9): one zip an auditor can check anywhere with
compliance/verify_bundle.py and nothing but Python and `cryptography`.

Layout (docs/compliance-exports.md):

    manifest.json            what is in the bundle: every other file's path, SHA-256 and size, the range, the chain
    manifest.sig             base64 Ed25519 signature over the exact bytes of manifest.json
    signing-key.json         the bundle key's public half and key id (also inside the manifest)
    reports/audit-range.json the audit range report (the source of truth) and its PDF
    reports/audit-range.pdf
    data/audit-events.csv    every event of the covered span, with the twelve chained fields and both hashes
    data/audit-events.jsonl
    ledger/checkpoints.jsonl the signed checkpoints from the anchor before the range to the one covering its end
    ledger/checkpoint-keys.json  the ledger's trusted public keys, by key id
    ledger/witness.jsonl     the witness entries of those checkpoints, as published outside the database
    README.txt

The events listed are not just the requested range but the whole span between two signed checkpoints around it
(anchor + 1 … cover), so the verifier can recompute every hash and link offline and tie both ends to signatures.
If no checkpoint covers the range's end yet, the bundle signs the head first (an audited on-demand checkpoint).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.db.models import Q

from clinaiops.audit.keys import audit_trusted_public_keys
from clinaiops.audit.models import AuditCheckpoint
from clinaiops.audit.services import audit_checkpoint_create
from clinaiops.core.models import User
from clinaiops.core.signing import public_key_b64, public_key_raw
from compliance.errors import ExportInvalid
from compliance.keys import evidence_signing_key
from compliance.listings import audit_listing, chunks_write, csv_chunks, file_digest, jsonl_chunks
from compliance.models import ExportFormat, ExportKind
from compliance.outputs import report_files_write
from compliance.reports import BuildRequest, Produced, ProducedFile, ReportSpec, report_register
from compliance.reports import audit_range as audit_range_report
from compliance.verification import checkpoint_infos, witness_status
from governance.ledger_search import ResolvedFilters, SeqRange, ledger_filters_parse, ledger_filters_resolve

MANIFEST_SCHEMA = "clinaiops.evidence_bundle_manifest"
MANIFEST_VERSION = "1.0"
_README = """ClinAIOps evidence bundle

Check it with the standalone verifier (one file; needs only Python 3.11+ and the `cryptography` package):

    python verify_bundle.py THIS_BUNDLE.zip --trusted-key KEY

where KEY is the bundle signing key's public key (base64, or a signing-key.json) obtained from the hospital out of
band. Without --trusted-key the verifier checks that the bundle is intact and self-consistent and prints the key's
fingerprint for you to compare.

What is checked: every file's SHA-256 and size against manifest.json; no file added, removed or renamed; the
Ed25519 signature over manifest.json; every audit event's hash and link in data/audit-events.jsonl from the anchor
checkpoint to the covering one; the checkpoints' signatures; the witness entries.
"""


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    extra = {k for k, v in raw.items() if v and k not in {"from", "to"}}
    if extra:
        # A bundle proves a contiguous span of the chain; a filtered listing could not be re-verified offline.
        raise ExportInvalid(
            "An evidence bundle covers a time range only.", fields={sorted(extra)[0]: ["Not used by a bundle."]}
        )
    return audit_range_report.prepare(actor, {k: raw[k] for k in ("from", "to") if raw.get(k)})


def _canonical_line(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _span(seq_range: SeqRange) -> tuple[int, AuditCheckpoint | None, AuditCheckpoint]:
    """(anchor seq, anchor, cover) around the range, signing the head first when nothing covers the range's end."""
    last = max(seq_range.last, seq_range.first, 1)
    cover = AuditCheckpoint.objects.filter(seq__gte=last).order_by("seq").first()
    if cover is None:
        cover = audit_checkpoint_create(reason="evidence_bundle")
        if cover is None:
            raise ExportInvalid("The audit ledger is empty: there is nothing to bundle.")
    anchor = AuditCheckpoint.objects.filter(seq__lt=seq_range.first).order_by("-seq").first()
    return (anchor.seq if anchor else 0), anchor, cover


def produce(request: BuildRequest, directory: Path) -> Produced:
    resolved = ledger_filters_resolve(ledger_filters_parse({k: str(v) for k, v in request.parameters.items()}))
    anchor_seq, anchor, cover = _span(resolved.seq_range)
    staging = directory / "bundle"
    report = report_files_write(
        audit_range_report.SPEC, request, (ExportFormat.JSON, ExportFormat.PDF), staging / "reports",
        stem="audit-range", listing_files={"csv": "data/audit-events.csv", "jsonl": "data/audit-events.jsonl"},
    )  # fmt: skip
    span = SeqRange(first=anchor_seq + 1, last=cover.seq)
    span_filters = ResolvedFilters(
        filters=resolved.filters, seq_range=span, head_seq=resolved.head_seq,
        condition=Q(seq__gte=span.first, seq__lte=span.last),
    )  # fmt: skip
    listing = audit_listing(span_filters, total=span.last - span.first + 1)
    data_dir = staging / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    both = listing.total * 2  # progress over the two passes, CSV then JSON Lines
    chunks_write(csv_chunks(listing, lambda done: request.progress(done, both)), data_dir / "audit-events.csv")
    chunks_write(
        jsonl_chunks(listing, lambda done: request.progress(listing.total + done, both)),
        data_dir / "audit-events.jsonl",
    )
    ledger_dir = staging / "ledger"
    ledger_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = list(AuditCheckpoint.objects.filter(seq__gte=anchor_seq, seq__lte=cover.seq).order_by("seq"))
    infos = checkpoint_infos(checkpoints)
    (ledger_dir / "checkpoints.jsonl").write_bytes(b"".join(_canonical_line(i.as_dict()) for i in infos))
    trusted = audit_trusted_public_keys()
    keys = {key_id: public_key_b64(key) for key_id, key in sorted(trusted.items())}
    (ledger_dir / "checkpoint-keys.json").write_bytes(_canonical_line({"algorithm": "Ed25519", "keys": keys}))
    witness = witness_status(infos)
    (ledger_dir / "witness.jsonl").write_bytes(b"".join(_canonical_line(entry) for entry in witness.entries))
    (staging / "README.txt").write_text(_README, encoding="utf-8")

    members = sorted(p for p in staging.rglob("*") if p.is_file())
    files = []
    for path in members:
        sha256, size = file_digest(path)
        files.append({"path": path.relative_to(staging).as_posix(), "sha256": sha256, "size": size})
    key = evidence_signing_key()
    raw_public = public_key_raw(key.public)
    signing = {
        "algorithm": "Ed25519", "key_id": key.key_id, "public_key": base64.b64encode(raw_public).decode(),
        "fingerprint_sha256": hashlib.sha256(raw_public).hexdigest(),
    }  # fmt: skip
    assert report.document is not None
    range_data = report.document.data["range"]
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "schema_version": MANIFEST_VERSION,
        "export_id": request.export_id,
        "created_at": request.generated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "created_by": {"user_id": request.actor.pk, "name": request.actor.signature_name, "role": request.actor.role},
        "range": {
            "from": range_data["from"],
            "to": range_data["to"],
            "first_seq": range_data["first_seq"],
            "last_seq": range_data["last_seq"],
        },
        "chain": {
            "events": "data/audit-events.jsonl",
            "first_seq": span.first,
            "last_seq": span.last,
            "anchor": {"seq": anchor_seq, "head_hash": anchor.head_hash if anchor else "0" * 64},
            "cover": {"seq": cover.seq, "head_hash": cover.head_hash},
            "checkpoints": "ledger/checkpoints.jsonl",
            "checkpoint_keys": "ledger/checkpoint-keys.json",
            "witness": "ledger/witness.jsonl",
            "witness_available": witness.available,
        },
        "signing": signing,
        "files": files,
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    signature = key.sign(manifest_bytes)
    key_file = _canonical_line({"algorithm": "Ed25519", "key_id": key.key_id, "public_key": signing["public_key"]})
    suffix = f"-{request.export_id}" if request.export_id is not None else ""
    target = directory / f"evidence-bundle{suffix}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as archive:
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.sig", signature + "\n")
        archive.writestr("signing-key.json", key_file)
        for path in members:
            archive.write(path, path.relative_to(staging).as_posix())
    shutil.rmtree(staging)
    sha256, size = file_digest(target)
    patients = set(report.patient_ids)
    if listing.collector is not None:
        patients |= listing.collector.resolved()
    return Produced(
        files=(ProducedFile(target.name, ExportFormat.ZIP, target, sha256, size),),
        patient_ids=frozenset(patients),
        document=report.document,
        rows=listing.total,
    )


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.EVIDENCE_BUNDLE,
        title="Evidence bundle",
        schema="evidence_bundle",
        schema_version=MANIFEST_VERSION,
        template="compliance/reports/audit_range.html",
        formats=frozenset({ExportFormat.ZIP}),
        file_stem="evidence-bundle",
        prepare=prepare,
        produce=produce,
    )
)
