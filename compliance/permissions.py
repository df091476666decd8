"""Who may export what (issue 9). One table, read by the services, the pages, the API and the command.

Scope is checked on top of the role, in the services, against the records themselves:
- clinicians: decision records and decision listings of their own care teams' patients only. Emergency
  (break-glass) access lets a clinician read a record to treat the patient, not export it;
- patients: their own disclosure accounting only, and only through the API;
- everyone else: refused (403), audited as denied; a record outside the actor's scope answers 404 (DESIGN §6).
"""

from __future__ import annotations

from clinaiops.core.models import Role
from compliance.models import ExportKind

_OFFICERS = frozenset({Role.COMPLIANCE_OFFICER, Role.SAFETY_OFFICER})

EXPORT_ROLES: dict[str, frozenset[str]] = {
    ExportKind.DECISION_RECORD: _OFFICERS | {Role.CLINICIAN},
    ExportKind.DECISIONS: _OFFICERS | {Role.CLINICIAN},
    ExportKind.AUDIT_RANGE: _OFFICERS,
    ExportKind.ACCOUNTING: _OFFICERS | {Role.PATIENT},
    ExportKind.EVIDENCE_BUNDLE: _OFFICERS,
    ExportKind.LEDGER_VERIFICATION: _OFFICERS,
    ExportKind.MODEL_CARD: _OFFICERS | {Role.ML_ENGINEER},
    ExportKind.FAIRNESS: _OFFICERS | {Role.ML_ENGINEER},
    ExportKind.EXPLAINABILITY: _OFFICERS | {Role.ML_ENGINEER},
}

# Every kind is in the table, so the permissions are decided once; a kind is built when its module registered a
# ReportSpec in compliance.registry (the model card, fairness and explainability reports are added there). Asking for
# a kind not built is refused with "not built yet", after the role check.


def export_kind_built(kind: str) -> bool:
    from compliance.registry import REPORTS  # the registry imports every report module: not at import time

    return kind in REPORTS


# Patients export only through the API, never from the portal pages.
PORTAL_ROLES: frozenset[str] = _OFFICERS | {Role.CLINICIAN, Role.ML_ENGINEER}


def export_role_allowed(role: str, kind: str) -> bool:
    return role in EXPORT_ROLES.get(kind, frozenset())


def export_kinds_for(role: str) -> list[ExportKind]:
    """The kinds this role may export and that are built, in the order the pages list them."""
    return [kind for kind in ExportKind if export_role_allowed(role, kind) and export_kind_built(kind)]


def is_officer(role: str) -> bool:
    return role in _OFFICERS
