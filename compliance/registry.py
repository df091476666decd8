"""Every report kind, registered: importing this module imports each kind's module (which registers its spec)."""

from __future__ import annotations

from compliance import bundle
from compliance.reports import (
    REPORTS,
    ReportSpec,
    accounting,
    audit_range,
    decision,
    decisions,
    explainability,
    fairness,
    model_card,
    verification,
)

# The modules are imported for their registration; naming them keeps the linters from calling them unused.
REGISTERED_MODULES = (
    accounting, audit_range, bundle, decision, decisions, explainability, fairness, model_card, verification,
)  # fmt: skip

__all__ = ["REPORTS", "ReportSpec", "report_spec"]


def report_spec(kind: str) -> ReportSpec:
    return REPORTS[kind]
