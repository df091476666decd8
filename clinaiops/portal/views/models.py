"""Model registry pages: versions, serving pointers, one version's gates, charts, sign-offs and lineage, the
comparison of two versions, and the governance actions (issue 11): sign-off, promote and roll back.

Each action calls the service the commands call (governance.signoffs.model_signoff_create,
inference.services.serving.model_version_promote / serving_rollback), so the refusals, and their audit events,
are the command line's. A button is shown only to the roles the service accepts; anyone else who posts anyway
is refused by the service itself (audited there) and gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from clinaiops.core.errors import ApplicationError, PermissionRefused
from clinaiops.core.models import Role, User
from clinaiops.portal.access import request_user, roles_required
from clinaiops.portal.charts_models import (
    GroupRates,
    confusion_svg,
    fairness_dots_svg,
    reliability_svg,
    roc_curve,
    roc_svg,
)
from clinaiops.portal.forms import form_errors_from
from clinaiops.portal.forms_governance import CompareForm, PromoteForm, RollbackForm, SignoffForm
from governance.lineage import ModelVersionLineage, model_version_lineage
from governance.models import ModelSignoff
from governance.services import SignatureRefused
from governance.signoffs import SIGNOFF_ROLES, model_signoff_create, model_signoffs_missing
from inference.gates.calibration import CalibrationGateResult
from inference.gates.fairness import FairnessGateResult
from inference.gates.outcome import GateOutcome
from inference.gates.result import GateStatus, StoredGateInvalid
from inference.labels import (
    CLASS_LABELS,
    COUNT_METRICS,
    METRIC_LABELS,
    PROVENANCE_LABELS,
    arm_label,
    count_terms,
    fairness_attribute_label,
    label_of,
    metric_terms,
    parameter_terms,
)
from inference.models import CLASS_ORDER, ApprovalState, Arm, ModelVersion
from inference.monitoring.models import DriftReport
from inference.selectors import model_version_get, model_version_list, serving_pointer_list
from inference.services.serving import (
    PROMOTER_ROLES,
    ROLLBACK_ROLES,
    SERVABLE_STATES,
    model_version_promote,
    serving_rollback,
)

STAFF = (Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
# The badge each gate status wears (the portal's stylesheet).
STATUS_BADGES = {
    GateStatus.PASSED: "badge-minor",
    GateStatus.FAILED: "badge-p0",
    GateStatus.NEEDS_FULL_REVIEW: "badge-major",
}
VALIDATION_CACHE_SECONDS = 3600


def _safe(markup: str) -> SafeString:
    return mark_safe(markup)  # noqa: S308 - the chart modules escape every label


# --- The list ----------------------------------------------------------------------------------------------


@roles_required(*STAFF)
def models(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    pointers = [(arm_label(pointer.arm), pointer) for pointer in serving_pointer_list()]
    versions = list(model_version_list()[:50])
    return render(
        request,
        "portal/models.html",
        {
            "versions": versions,
            "pointers": pointers,
            "can_rollback": user.role in ROLLBACK_ROLES and bool(pointers),
            "rollback_form": RollbackForm(),
            "compare_form": CompareForm(choices=_version_choices(versions)) if len(versions) >= 2 else None,
            "nav": "models",
        },
    )


def _version_choices(versions: list[ModelVersion]) -> list[tuple[int, str]]:
    return [
        (v.pk, f"{v.short_hash} · {v.get_approval_state_display().lower()} · {v.created_at:%d %b %Y}") for v in versions
    ]


# --- One version ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationEvidence:
    """The served artifact's probabilities on the version's own validation rows, recomputed (they are not stored):
    the snapshot rows the manifest names, the seeded split it records, and the ONNX model its trusted manifest
    names, exactly as the gates computed them (inference.gates.evaluation)."""

    labels: tuple[int, ...]
    probabilities: tuple[tuple[float, ...], ...]


def validation_evidence(version: ModelVersion) -> ValidationEvidence:
    """Recompute once per artifact and keep it in the cache: scoring ~200 rows is cheap, reading and
    re-verifying the snapshot is not. Raises what the artifact store and manifest raise when they cannot be
    trusted (the caller says so instead of drawing)."""
    key = f"portal:validation-evidence:{version.sha256}"
    cached = cache.get(key)
    if isinstance(cached, ValidationEvidence):
        return cached
    import numpy as np

    from inference.artifacts import artifact_get
    from inference.manifest import manifest_trusted
    from inference.services.datasets import model_snapshot_rows
    from inference.training import onnx_probabilities, train_validation_split

    signed = manifest_trusted(version)
    rows = model_snapshot_rows(version)
    _, val_idx = train_validation_split(len(rows), version.training_run.seed)
    matrix = np.asarray(
        [[rows[i]["features"][name] for name in signed.feature_names] for i in val_idx], dtype=np.float32
    )
    proba = onnx_probabilities(artifact_get(signed.onnx_sha256, suffix=".onnx"), matrix).astype(np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)
    evidence = ValidationEvidence(
        labels=tuple(CLASS_ORDER.index(rows[i]["label"]) for i in val_idx),
        probabilities=tuple(tuple(float(p) for p in row) for row in proba),
    )
    cache.set(key, evidence, VALIDATION_CACHE_SECONDS)
    return evidence


def _evidence_charts(version: ModelVersion) -> dict[str, Any]:
    try:
        evidence = validation_evidence(version)
    except Exception as exc:
        return {"evidence_error": f"{type(exc).__name__}: {exc}"[:300]}
    names = [label_of(CLASS_LABELS, c) for c in CLASS_ORDER]
    curves = [
        roc_curve(name, [row[k] for row in evidence.probabilities], [label == k for label in evidence.labels])
        for k, name in enumerate(names)
    ]
    confusion = [[0] * len(names) for _ in names]
    for label, row in zip(evidence.labels, evidence.probabilities, strict=True):
        confusion[label][max(range(len(row)), key=row.__getitem__)] += 1
    aucs = [c.auc for c in curves if c.auc is not None]
    return {
        "evidence_rows": len(evidence.labels),
        "roc_svg": _safe(roc_svg(curves)),
        "roc_curves": curves,
        "macro_auc": sum(aucs) / len(aucs) if aucs else None,
        "confusion_svg": _safe(confusion_svg(confusion, names)),
        "confusion_rows": list(zip(names, confusion, strict=True)),
        "class_names": names,
    }


@dataclass(frozen=True)
class FairnessView:
    title: str
    svg: SafeString
    groups: list[GroupRates]
    eod: float | None
    dpd: float | None
    passed: bool
    reference: str


def _fairness_views(gates: GateOutcome) -> list[FairnessView]:
    fairness = gates.get(FairnessGateResult)
    if fairness is None:
        return []
    views = []
    attributes = fairness.report.get("attributes")
    for attribute in attributes if isinstance(attributes, list) else []:
        if not isinstance(attribute, dict):
            continue
        groups = [
            GroupRates(
                group=str(g.get("group")).replace("×", " × "),
                n=int(_rate(g.get("n")) or 0),
                tpr=_rate(g.get("tpr")),
                fpr=_rate(g.get("fpr")),
                selection_rate=_rate(g.get("selection_rate")),
                judged=bool(g.get("judged")),
            )
            for g in _objects(attribute.get("groups"))
        ]
        title = (
            f"{fairness_attribute_label(str(attribute.get('attribute')))}: "
            f"'{label_of(CLASS_LABELS, str(attribute.get('positive_class')))}' by subgroup"
        )
        views.append(
            FairnessView(
                title=title,
                svg=_safe(fairness_dots_svg(groups, title=title)),
                groups=groups,
                eod=_rate(attribute.get("equalized_odds_difference")),
                dpd=_rate(attribute.get("demographic_parity_difference")),
                passed=bool(attribute.get("passed")),
                reference=str(attribute.get("reference_group") or "").replace("×", " × "),
            )
        )
    return views


def _objects(value: object) -> list[dict[str, object]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _rate(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Actions:
    """Which actions this user may take on this version now, each as the services would judge it."""

    signoff: bool
    signoff_needs_acknowledgement: bool
    promote_arms: list[tuple[str, str]]


def _actions(user: User, version: ModelVersion, lineage: ModelVersionLineage) -> Actions:
    role = SIGNOFF_ROLES.get(user.role)
    signed = ModelSignoff.objects.filter(model_version=version).values_list("role", "signer_id")
    signoff = (
        role is not None
        and version.approval_state == ApprovalState.VALIDATED
        and not lineage.gates_unreadable
        and all(r != role and signer != user.pk for r, signer in signed)
    )
    arms = [
        (arm, arm_label(arm))
        for arm in Arm.values
        if user.role in PROMOTER_ROLES and version.approval_state in SERVABLE_STATES[arm]
    ]
    return Actions(
        signoff=signoff,
        signoff_needs_acknowledgement=signoff and user.role == Role.SAFETY_OFFICER and bool(lineage.gates.findings),
        promote_arms=arms,
    )


def _detail_render(
    request: HttpRequest, version: ModelVersion, *, signoff_form: SignoffForm | None = None, status: int = 200
) -> HttpResponse:
    user = request_user(request)
    lineage = model_version_lineage(version)
    actions = _actions(user, version, lineage)
    calibration = lineage.gates.get(CalibrationGateResult)
    context = {
        "lineage": lineage,
        "version": version,
        "gates": [(result, STATUS_BADGES[result.status]) for result in lineage.gates.results],
        "metrics": metric_terms(version.metrics),
        "provenance": count_terms(lineage.snapshot.provenance_counts, PROVENANCE_LABELS),
        "classes": count_terms(lineage.snapshot.class_counts, CLASS_LABELS),
        "params": parameter_terms(lineage.run.params),
        "actions": actions,
        "signoff_form": signoff_form or SignoffForm(),
        "promote_form": PromoteForm(),
        "calibration": calibration,
        "reliability_svg": _safe(reliability_svg(calibration.bins)) if calibration else None,
        "fairness": _fairness_views(lineage.gates),
        "nav": "models",
        **_evidence_charts(version),
    }
    return render(request, "portal/model.html", context, status=status)


def _version_or_404(pk: int) -> ModelVersion:
    version = model_version_get(pk)
    if version is None:
        raise Http404("No such model version.")
    return version


@roles_required(*STAFF)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A model version's gates, charts, manifest check, sign-offs and lineage: what a safety officer reads before
    signing it off and what an auditor reads afterwards."""
    return _detail_render(request, _version_or_404(pk))


@require_POST
@roles_required(*STAFF)
def model_signoff(request: HttpRequest, pk: int) -> HttpResponse:
    """E-sign the version (meaning "signed off"), as `manage.py signoff` does."""
    version = _version_or_404(pk)
    user = request_user(request)
    form = SignoffForm(request.POST)
    if form.is_valid():
        try:
            signoff = model_signoff_create(
                actor=user,
                version=version,
                password=form.cleaned_data["password"],
                acknowledge_full_review=form.cleaned_data["acknowledge_full_review"],
            )
        except SignatureRefused as exc:  # a wrong password or a locked account: said at the field
            form_errors_from(form, exc)
        except PermissionRefused as exc:
            raise PermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            form_errors_from(form, exc)
        else:
            missing = model_signoffs_missing(version=version)
            tail = (
                f"still needed: a sign-off by a {' and a '.join(missing)}."
                if missing
                else f"the version is now {version.get_approval_state_display().lower()}."
            )
            messages.success(request, f"Signed off: {signoff.signature.manifestation}; {tail}")
            return redirect("portal:model", pk=version.pk)
    return _detail_render(request, version, signoff_form=form, status=400)


@require_POST
@roles_required(*STAFF)
def model_promote(request: HttpRequest, pk: int) -> HttpResponse:
    """Point an arm at this version, as `manage.py promote` does (ML engineers)."""
    version = _version_or_404(pk)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an arm: production, canary or shadow.")
        return redirect("portal:model", pk=version.pk)
    arm = form.cleaned_data["arm"]
    try:
        model_version_promote(version=version, arm=arm, actor=request_user(request))
    except PermissionRefused as exc:
        raise PermissionDenied(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The {arm_label(arm)} arm now serves {version.short_hash}.")
    return redirect("portal:model", pk=version.pk)


@require_POST
@roles_required(*STAFF)
def serving_rollback_view(request: HttpRequest) -> HttpResponse:
    """Point an arm back at what served before, as `manage.py rollback` does (ML engineers, safety officers)."""
    form = RollbackForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an arm and say why you are rolling it back.")
        return redirect("portal:models")
    arm = form.cleaned_data["arm"]
    try:
        event = serving_rollback(arm=arm, actor=request_user(request), reason=form.cleaned_data["reason"])
    except PermissionRefused as exc:
        raise PermissionDenied(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if event.model_version is None:
            messages.warning(
                request, f"The {arm_label(arm)} arm now serves nothing: rules only, every proposal to review."
            )
        else:
            messages.success(request, f"The {arm_label(arm)} arm rolled back to {event.model_version.short_hash}.")
    return redirect("portal:models")


# --- Two versions side by side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    label: str
    a: str
    b: str
    delta: str = ""


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _delta(a: float | None, b: float | None) -> str:
    return "" if a is None or b is None else f"{b - a:+.3f}"


def _metric_row(name: str, a: float | None, b: float | None) -> CompareRow:
    label = label_of(METRIC_LABELS, name)
    if name in COUNT_METRICS:  # a count stored as a float: whole numbers
        whole = "" if a is None or b is None else f"{b - a:+,.0f}"
        return CompareRow(label, "—" if a is None else f"{a:,.0f}", "—" if b is None else f"{b:,.0f}", whole)
    return CompareRow(label, _fmt(a), _fmt(b), _delta(a, b))


def _gates_or_empty(version: ModelVersion) -> tuple[GateOutcome, str]:
    try:
        return version.gate_outcome, ""
    except StoredGateInvalid as exc:
        return GateOutcome(()), str(exc)


def _fairness_summary(gates: GateOutcome) -> dict[str, tuple[float | None, float | None, bool]]:
    fairness = gates.get(FairnessGateResult)
    attributes = fairness.report.get("attributes") if fairness else None
    summary = {}
    for attribute in attributes if isinstance(attributes, list) else []:
        if isinstance(attribute, dict):
            key = (
                f"{fairness_attribute_label(str(attribute.get('attribute')))} "
                f"('{label_of(CLASS_LABELS, str(attribute.get('positive_class')))}')"
            )
            summary[key] = (
                _rate(attribute.get("equalized_odds_difference")),
                _rate(attribute.get("demographic_parity_difference")),
                bool(attribute.get("passed")),
            )
    return summary


def _latest_drift(version: ModelVersion) -> DriftReport | None:
    return (
        DriftReport.objects.filter(model_version=version)
        .only("pk", "created_at", "severity", "drifted", "n_current", "model_version_id")
        .order_by("-created_at", "-pk")
        .first()
    )


@roles_required(*STAFF)
def models_compare(request: HttpRequest) -> HttpResponse:
    """Metrics, gates, fairness and drift of two versions side by side (?a=&b=, model version ids)."""
    versions = list(model_version_list()[:50])
    form = CompareForm(request.GET or None, choices=_version_choices(versions))
    context: dict[str, Any] = {"form": form, "nav": "models"}
    if not form.is_bound or not form.is_valid():
        return render(request, "portal/model_compare.html", context, status=400 if form.is_bound else 200)
    a, b = _version_or_404(form.cleaned_data["a"]), _version_or_404(form.cleaned_data["b"])
    gates_a, unreadable_a = _gates_or_empty(a)
    gates_b, unreadable_b = _gates_or_empty(b)
    metric_names = sorted(set(a.metrics) | set(b.metrics))
    metrics = [_metric_row(name, a.metrics.get(name), b.metrics.get(name)) for name in metric_names]
    names = list(dict.fromkeys([r.name for r in gates_a.results] + [r.name for r in gates_b.results]))
    by_a, by_b = {r.name: r for r in gates_a.results}, {r.name: r for r in gates_b.results}
    gates = [
        (
            (by_a.get(n) or by_b[n]).label or n,
            [(r.status.label, STATUS_BADGES[r.status], r.summary) if r else None for r in (by_a.get(n), by_b.get(n))],
        )
        for n in names
    ]
    fair_a, fair_b = _fairness_summary(gates_a), _fairness_summary(gates_b)
    fairness = [
        (
            key,
            fair_a.get(key),
            fair_b.get(key),
            _delta((fair_a.get(key) or (None,))[0], (fair_b.get(key) or (None,))[0]),
        )
        for key in dict.fromkeys([*fair_a, *fair_b])
    ]
    drift = [(version, _latest_drift(version)) for version in (a, b)]
    context.update(
        {
            "a": a,
            "b": b,
            "metrics": metrics,
            "gates": gates,
            "unreadable": [u for u in (unreadable_a, unreadable_b) if u],
            "fairness": fairness,
            "drift": drift,
            "findings": (len(gates_a.findings), len(gates_b.findings)),
        }
    )
    return render(request, "portal/model_compare.html", context)
