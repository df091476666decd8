"""Writing a report's files: the JSON document, its HTML and PDF, and its listing as CSV and JSON Lines, each
hashed as it is written. Used by the export job and, several times over, by the evidence bundle."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from compliance.listings import Listing, bytes_write, chunks_write, csv_chunks, jsonl_chunks
from compliance.models import ExportFormat
from compliance.rendering import html_pdf, report_html
from compliance.reports import BuildRequest, Produced, ProducedFile, ReportDocument, ReportSpec

_DOCUMENT_FORMATS = {ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF}
_LISTING_FORMATS = {ExportFormat.CSV, ExportFormat.JSONL}


def document_json(document: ReportDocument) -> bytes:
    """The JSON document: UTF-8, keys sorted, indented for reading (the hashes in the manifest are over these bytes)."""
    return (json.dumps(document.data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def report_files_write(
    spec: ReportSpec,
    request: BuildRequest,
    formats: Sequence[str],
    directory: Path,
    *,
    stem: str | None = None,
    listing_stem: str | None = None,
    listing_files: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Produced:
    """Write the requested formats of one report into `directory`. Names: "<stem>-<export id>.<ext>" for the
    document, "<listing name>-<export id>.<ext>" for the listing (or the stems given). The document is told which
    listing files sit beside it (`listing_files` when the caller writes them itself, as the evidence bundle does)."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = f"-{request.export_id}" if request.export_id is not None else ""
    stem = stem or f"{spec.file_stem}{suffix}"
    files: list[ProducedFile] = []
    patients: set[int] = set()
    document: ReportDocument | None = None
    listing: Listing | None = None
    name = ""
    if _LISTING_FORMATS & set(formats) and spec.listing is not None:
        listing = spec.listing(request)
        name = listing_stem or f"{listing.name}{suffix}"
    beside: dict[str, str] = {
        f.value: f"{name}.{f.value}" for f in (ExportFormat.CSV, ExportFormat.JSONL) if f in formats and listing
    }
    request = replace(request, listing_files=dict(listing_files) if listing_files is not None else beside)
    if _DOCUMENT_FORMATS & set(formats) and spec.build is not None:
        document = spec.build(request)
        patients |= document.patient_ids
        for fmt in (f for f in (ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF) if f in formats):
            path = directory / f"{stem}.{fmt}"
            if fmt == ExportFormat.JSON:
                written = bytes_write(document_json(document), path)
            elif fmt == ExportFormat.HTML:
                written = bytes_write(report_html(spec, document).encode("utf-8"), path)
            else:
                written = bytes_write(html_pdf(report_html(spec, document, pdf=True)), path)
            files.append(ProducedFile(path.name, fmt, path, written.sha256, written.size))
    rows = 0
    if listing is not None:
        total_rows = listing.total
        for fmt in (f for f in (ExportFormat.CSV, ExportFormat.JSONL) if f in formats):
            counted: list[int] = [0]

            def note(done: int, counted: list[int] = counted, total: int = total_rows) -> None:
                counted[0] = done
                if progress is not None:
                    progress(done, total)

            encode = csv_chunks if fmt == ExportFormat.CSV else jsonl_chunks
            path = directory / f"{name}.{fmt}"
            written = chunks_write(encode(listing, note), path)
            files.append(ProducedFile(path.name, fmt, path, written.sha256, written.size))
            rows = counted[0]
        if listing.collector is not None:
            patients |= listing.collector.resolved()
    return Produced(files=tuple(files), patient_ids=frozenset(patients), document=document, rows=rows)
