"""The registry of report kinds. Each kind is one module that registers a ReportSpec:

- `prepare(actor, raw)` validates the request and checks the actor's scope against the records (a clinician's own
  patients, a patient's own record), raising ExportInvalid or ExportNotFound; it returns canonical parameters (ids,
  codes, dates: never free text), which are stored on the Export and audited;
- `build(request)` makes the JSON document, the source of truth, with its schema name and version
  (docs/compliance-exports.md); HTML and PDF are rendered from that document by `template`, never from the
  database, so the three cannot disagree;
- `listing(request)`, when the kind has one, streams the long rows to CSV and JSON Lines.

compliance/registry.py imports every kind's module, so the registry is complete wherever it is read through it.
The second round of issue 9 adds the model card, fairness and explainability reports as three more modules of this
shape (their kinds and permissions already exist in compliance.models and compliance.permissions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clinaiops.core.models import User
from compliance.listings import Listing
from governance.accounting import role_label

SCHEMA_PREFIX = "clinaiops."


@dataclass(frozen=True)
class BuildRequest:
    actor: User
    parameters: Mapping[str, Any]
    generated_at: datetime
    export_id: int | None = None
    # progress(done, total): called now and then by long builds; total 0 means unknown.
    progress: Callable[[int, int], None] = field(default=lambda done, total: None)
    # The listing files this export writes beside the document, by format ("csv", "jsonl": their names inside the
    # export or bundle), so a PDF that shows only the first rows says truly where the rest is; empty when none.
    listing_files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportDocument:
    data: dict[str, Any]  # the JSON document
    patient_ids: frozenset[int]  # whose data it discloses (their accounting gets an export.created event)
    charts: Mapping[str, str] = field(default_factory=dict)  # inline SVG for the HTML and PDF, not part of the JSON


@dataclass(frozen=True)
class ProducedFile:
    name: str
    format: str
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Produced:
    """What a job wrote: its files (hashed as written), whose data they disclose, and the document if one was built."""

    files: tuple[ProducedFile, ...]
    patient_ids: frozenset[int]
    document: ReportDocument | None
    rows: int = 0  # listing rows written


@dataclass(frozen=True)
class ReportSpec:
    kind: str
    title: str
    schema: str
    schema_version: str
    template: str  # the body, included by the standalone document and by the portal page
    formats: frozenset[str]
    file_stem: str
    prepare: Callable[[User, Mapping[str, str]], dict[str, Any]]
    build: Callable[[BuildRequest], ReportDocument] | None = None
    listing: Callable[[BuildRequest], Listing] | None = None
    # A kind that is not "a document plus a listing" (the evidence bundle) writes its files itself.
    produce: Callable[[BuildRequest, Path], Produced] | None = None


REPORTS: dict[str, ReportSpec] = {}


def report_register(spec: ReportSpec) -> ReportSpec:
    REPORTS[spec.kind] = spec
    return spec


def document_header(spec: ReportSpec, request: BuildRequest) -> dict[str, Any]:
    """The fields every report document starts with."""
    actor = request.actor
    return {
        "schema": SCHEMA_PREFIX + spec.schema,
        "schema_version": spec.schema_version,
        "title": spec.title,
        "export_id": request.export_id,
        "generated_at": request.generated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "generated_by": {
            "user_id": actor.pk,
            "name": actor.signature_name,
            "role": actor.role,
            "role_label": role_label(actor.role),
        },
        "parameters": dict(request.parameters),
    }
