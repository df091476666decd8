"""HTML and PDF of a report document. Both are rendered from the JSON document (never from the database), by the
kind's body template inside a standalone print document; the portal shows the same body inside its own page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from compliance.reports import ReportDocument, ReportSpec


def report_context(spec: ReportSpec, document: ReportDocument, *, pdf: bool) -> dict[str, Any]:
    return {
        "spec": spec,
        "body_template": spec.template,
        "data": document.data,
        # compliance.charts escapes every label it writes, so the SVG is safe to embed as is.
        "charts": {name: mark_safe(svg) for name, svg in document.charts.items()},  # noqa: S308
        "pdf": pdf,
        "max_rows": settings.EXPORT_PDF_MAX_ROWS,
    }


def report_html(spec: ReportSpec, document: ReportDocument, *, pdf: bool = False) -> str:
    """The standalone HTML document (inline CSS, no external resource, so it opens offline and in WeasyPrint)."""
    return render_to_string("compliance/report_document.html", report_context(spec, document, pdf=pdf))


def report_body(spec: ReportSpec, document: ReportDocument) -> SafeString:
    """The report's body alone, for a portal page."""
    return mark_safe(render_to_string(spec.template, report_context(spec, document, pdf=False)))  # noqa: S308


def html_pdf(html: str) -> bytes:
    """WeasyPrint is imported here, when a PDF is made, not when a web worker starts (issue 13, STYLE)."""
    import weasyprint

    pdf: bytes = weasyprint.HTML(string=html).write_pdf()
    return pdf
