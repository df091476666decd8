"""Model registry pages: versions, serving pointers, and one version's gates, manifest, sign-offs and lineage."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from clinaiops.core.models import Role
from clinaiops.portal.access import roles_required
from governance.lineage import model_version_lineage
from inference.gates.result import GateStatus
from inference.labels import (
    CLASS_LABELS,
    PROVENANCE_LABELS,
    arm_label,
    count_terms,
    metric_terms,
    parameter_terms,
)
from inference.selectors import model_version_get, model_version_list, serving_pointer_list

# The badge each gate status wears (the portal's stylesheet).
STATUS_BADGES = {
    GateStatus.PASSED: "badge-minor",
    GateStatus.FAILED: "badge-p0",
    GateStatus.NEEDS_FULL_REVIEW: "badge-major",
}


@roles_required(Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def models(request: HttpRequest) -> HttpResponse:
    pointers = [(arm_label(pointer.arm), pointer) for pointer in serving_pointer_list()]
    return render(
        request,
        "portal/models.html",
        {"versions": model_version_list()[:50], "pointers": pointers, "nav": "models"},
    )


@roles_required(Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A model version's gates, manifest check, sign-offs and lineage: what a safety officer reads before
    signing it off (`manage.py signoff`) and what an auditor reads afterwards."""
    version = model_version_get(pk)
    if version is None:
        raise Http404("No such model version.")
    lineage = model_version_lineage(version)
    gates = [(result, STATUS_BADGES[result.status]) for result in lineage.gates.results]
    context = {
        "lineage": lineage,
        "version": version,
        "gates": gates,
        "metrics": metric_terms(version.metrics),
        "provenance": count_terms(lineage.snapshot.provenance_counts, PROVENANCE_LABELS),
        "classes": count_terms(lineage.snapshot.class_counts, CLASS_LABELS),
        "params": parameter_terms(lineage.run.params),
        "nav": "models",
    }
    return render(request, "portal/model.html", context)
