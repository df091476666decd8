"""Model registry pages: versions, serving pointers, and one version's gates, manifest, sign-offs and lineage."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from clinaiops.core.models import Role
from clinaiops.portal.access import roles_required
from inference.selectors import model_version_list, serving_pointer_list


@roles_required(Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def models(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/models.html",
        {"versions": model_version_list()[:50], "pointers": serving_pointer_list(), "nav": "models"},
    )


@roles_required(Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A model version's gates, manifest check, sign-offs and lineage: what a safety officer reads before
    signing it off (`manage.py signoff`) and what an auditor reads afterwards."""
    from governance.signoffs import model_signoff_list, model_signoff_verify, model_signoffs_missing
    from inference.gates import gate_summary
    from inference.manifest import manifest_verify
    from inference.selectors import serving_history

    version = model_version_list().filter(pk=pk).first()
    if version is None:
        raise Http404("No such model version.")
    gates = [
        {"name": name, "hard": gate["hard"], "status": gate["status"], "summary": gate_summary(name, gate)}
        for name, gate in version.gates.items()
    ]
    failures = [f for gate in version.gates.values() if gate["hard"] for f in gate.get("failures", [])]
    findings = [r for gate in version.gates.values() for r in gate.get("review_reasons", [])]
    signoffs = [(signoff, model_signoff_verify(signoff)) for signoff in model_signoff_list(version=version)]
    context = {
        "version": version,
        "run": version.training_run,
        "snapshot": version.training_run.snapshot,
        "gates": gates,
        "failures": failures,
        "findings": findings,
        "manifest": manifest_verify(version),
        "signoffs": signoffs,
        "missing": model_signoffs_missing(version=version),
        "history": serving_history(version=version)[:50],
        "nav": "models",
    }
    return render(request, "portal/model.html", context)
