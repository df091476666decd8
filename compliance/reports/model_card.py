"""Model card, one per model version (issue 9, DESIGN §4), filled from the registry: the version and its signed
manifest, its training run and snapshot, its stored gates, the change-control plan, the sign-offs, the serving
history (governance.lineage), the validation rows recomputed as its gates saw them, SHAP by the serving
explainer, and live evidence from monitoring (drift, clinician overrides, subgroup accuracy against clinician
decisions). Nothing in it is typed per version by hand: the few sentences that describe the titration line itself
(its purpose, users and out-of-scope uses, DESIGN §1–§2) are written once below, with every number they quote
filled from the registry or the approval policy.

Sections:
- the Google Model Card Toolkit's `model_details`, `model_parameters`, `quantitative_analysis`, `considerations`;
- `chai_applied_model_card`: the CHAI Applied Model Card's sections (basic and release information, summary, uses
  and directions, warnings, trust ingredients, key metrics, resources);
- `hti1_source_attributes`: the 31 source attributes ONC's HTI-1 rule requires for a predictive decision support
  intervention, 45 CFR 170.315(b)(11)(iv)(B)(1)–(9), each `{id, name, value}` and never empty: a value the registry
  cannot give is an explicit "Not applicable: <why>".

Schema: docs/reports-model.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.utils import timezone

from clinaiops.audit.chain import TIMESTAMP_FORMAT
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from compliance.charts import bar_chart_svg
from compliance.held_out_metrics import bootstrap_intervals
from compliance.model_charts import reliability_svg
from compliance.models import ExportFormat, ExportKind
from compliance.reports import BuildRequest, ReportDocument, ReportSpec, document_header, report_register
from compliance.reports.explainability import explainer_words, shap_document, version_global_shap
from compliance.reports.fairness import ATTRIBUTE_LABELS, attribute_label
from compliance.reports.model_evidence import (
    SENSITIVE_ATTRIBUTES,
    ValidationData,
    live_decisions,
    validation_data,
    version_of,
    version_parameters,
)
from compliance.wording import APPROVAL_WORDS, words
from governance.change_control import change_control_plan_signature, change_control_plan_verify
from governance.lineage import ModelVersionLineage, model_version_lineage
from governance.models import ApprovalPolicy
from governance.simulation_results import simulation_card_section
from inference.calibration import multiclass_metrics
from inference.features import FEATURE_LABELS
from inference.gates.calibration import CalibrationGateResult
from inference.gates.change_control import ChangeControlGateResult
from inference.gates.fairness import FairnessGateResult
from inference.labels import METRIC_LABELS, PROVENANCE_LABELS, label_of
from inference.models import Arm, ChangeControlPlan, ModelVersion
from inference.monitoring.contracts import subgroup_accuracy
from inference.monitoring.models import DriftReport
from inference.monitoring.selectors import arm_performance, breaker_thresholds
from inference.services.datasets import age_band
from inference.training import SPLIT_METHOD

METRIC_RESAMPLES = 1000
METRIC_SEED = 20240109
LIVE_DAYS = 30
NOT_APPLICABLE = "Not applicable: "
HTI1_RULE = "45 CFR 170.315(b)(11)(iv)(B)"

# The titration line's declared purpose (DESIGN §1–§2). The numbers these sentences need are added where they are
# used, from the approval policy and the registry.
INTENDED_USE = (
    "Propose one medication titration step (decrease, maintain or increase one step on the patient's regimen "
    "ladder) for adults in home hypertension management, from a 14-day window of home blood-pressure readings, "
    "heart rate, adherence and the current regimen, so that clinicians keep control of every change that matters."
)
OUT_OF_SCOPE = (
    "Hypertensive crisis or hypotension (the safety rules handle these before any model runs and send them to the "
    "care team); diagnosing hypertension or starting treatment; choosing a drug or a dose outside the patient's "
    "regimen ladder; children, pregnancy, and patients whose readings come from devices not integrated with the "
    "system; any use while the AI is stopped; any decision without the clinician review the approval policy "
    "requires."
)
USERS = (
    "Clinicians of the patient's care team, who review every major proposal in the review queue and decide it "
    "with an e-signature; patients, who receive minor proposals and clinicians' decisions in the mobile app with "
    "plain-language reasons; ML engineers and clinical safety officers, who validate, sign off, deploy and "
    "monitor the model."
)


# --- Small readers ---------------------------------------------------------------------------------------


def _ts(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT) if moment else None


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _representativeness(data: ValidationData) -> list[dict[str, Any]]:
    """Counts and shares by sex, age band, race/ethnicity and skin tone: training rows, validation rows, and the
    patients enrolled now (the deployed setting)."""
    enrolled = list(Patient.objects.values_list("sex", "birth_year", "race_ethnicity", "skin_tone"))
    year = timezone.now().year
    enrolled_values = {
        "sex": [row[0] for row in enrolled],
        "age_band": [age_band(year - row[1]) for row in enrolled],
        "race_ethnicity": [row[2] for row in enrolled],
        "skin_tone": [f"type {row[3]}" for row in enrolled],
    }
    out = []
    for name in SENSITIVE_ATTRIBUTES:
        train, val, now = (
            Counter(v) for v in (data.training_sensitive[name], data.sensitive[name], enrolled_values[name])
        )
        n_train, n_val, n_now = sum(train.values()), sum(val.values()), sum(now.values())
        groups = sorted(set(train) | set(val) | set(now))
        out.append(
            {
                "attribute": name,
                "label": ATTRIBUTE_LABELS[name],
                "groups": [
                    {
                        "group": g,
                        "training_n": train[g],
                        "training_pct": _pct(train[g], n_train),
                        "validation_n": val[g],
                        "validation_pct": _pct(val[g], n_val),
                        "enrolled_n": now[g],
                        "enrolled_pct": _pct(now[g], n_now),
                    }
                    for g in groups
                ],
                "max_gap_pp_training_vs_enrolled": max(
                    (abs(_pct(train[g], n_train) - _pct(now[g], n_now)) for g in groups), default=0.0
                ),
            }
        )
    return out


def _bootstrap_metrics(proba: npt.NDArray[np.float64], y: npt.NDArray[np.int64]) -> list[dict[str, Any]]:
    """Held-out metrics of the served model (as the gates compute them) with seeded percentile-bootstrap 95 %
    intervals (compliance.held_out_metrics)."""
    point = multiclass_metrics(proba, y)
    intervals = bootstrap_intervals(proba, y, resamples=METRIC_RESAMPLES, seed=METRIC_SEED)
    rows = []
    for name, value in point.items():
        low, high, replicates = intervals.get(name, (None, None, 0))
        rows.append(
            {
                "type": name,
                "label": label_of(METRIC_LABELS, name),
                "value": value,
                "slice": "validation rows",
                "confidence_interval": {
                    "lower_bound": low,
                    "upper_bound": high,
                    "confidence": 0.95,
                    "resamples": replicates,
                    "seed": METRIC_SEED,
                },
                "higher_is_better": name != "log_loss",
            }
        )
    return rows


def _gates(lineage: ModelVersionLineage) -> list[dict[str, Any]]:
    rows = []
    for result in lineage.gates.results:
        stored = result.stored()
        numbers = {
            k: v
            for k, v in stored.items()
            if k not in {"report", "bins", "review_reasons", "status", "hard", "passed", "evaluated_at", "failures"}
        }
        rows.append(
            {
                "name": result.name,
                "label": result.label or result.name,
                "hard": result.hard,
                "status": str(result.status),
                "status_label": result.status.label,
                "summary": result.summary,
                "bound": result.bound,
                "failures": list(result.failures),
                "findings": list(result.findings),
                "evaluated_at": result.evaluated_at,
                "numbers": numbers,
            }
        )
    return rows


def _fairness_summary(lineage: ModelVersionLineage) -> dict[str, Any]:
    """The fairness gate's stored report (validation rows, signed in the manifest), summarised."""
    gate = lineage.gates.get(FairnessGateResult)
    if gate is None:
        return {"available": False, "note": "this version has no stored fairness gate"}
    report = gate.report
    attributes = report.get("attributes") or []
    assert isinstance(attributes, list)
    rows = []
    for a in attributes:
        assert isinstance(a, dict)
        rows.append(
            {
                "attribute": a.get("attribute"),
                "attribute_label": attribute_label(str(a.get("attribute"))),
                "positive_class": a.get("positive_class"),
                "demographic_parity_difference": a.get("demographic_parity_difference"),
                "equalized_odds_difference": a.get("equalized_odds_difference"),
                "passed": a.get("passed"),
                "failures": len(a.get("failures") or []),  # type: ignore[arg-type]
            }
        )
    return {
        "available": True,
        "enforced": gate.enforced,
        "status_label": gate.status.label,
        "summary": gate.summary,
        "max_equalized_odds_difference": gate.max_equalized_odds_difference,
        "bound": gate.bound,
        "min_group_ratio": gate.min_group_ratio,
        "failures": list(gate.measured_failures),
        "attributes": rows,
        "full_report": "manage.py export fairness <version> (every class, every intersection, bootstrap intervals)",
    }


def _plan(lineage: ModelVersionLineage) -> dict[str, Any]:
    gate = lineage.gates.get(ChangeControlGateResult)
    plan: ChangeControlPlan | None = None
    if gate is not None and gate.plan is not None:
        plan = ChangeControlPlan.objects.filter(pk=gate.plan.id).first()
    if plan is None:
        plan = ChangeControlPlan.objects.filter(model_line="bp-titration").order_by("-version").first()
    gate_part = (
        {"status_label": gate.status.label, "summary": gate.summary, "findings": list(gate.findings)} if gate else None
    )
    if plan is None:
        return {
            "declared": False,
            "gate": gate_part,
            "note": "No change-control plan is declared for this model line: every retrain needs a full review "
            "(both sign-offs, acknowledging the gates' findings).",
        }
    signature = change_control_plan_signature(plan)
    return {
        "declared": True,
        "model_line": plan.model_line,
        "version": plan.version,
        "allowed_families": list(plan.allowed_families),
        "allowed_feature_set_versions": list(plan.allowed_feature_set_versions),
        "performance_floor": plan.performance_floor,
        "fairness_ceiling": plan.fairness_ceiling,
        "declared_at": _ts(plan.created_at),
        "signature": signature.manifestation if signature else None,
        "signature_verified": change_control_plan_verify(plan),
        "gate": gate_part,
    }


def _live(version: ModelVersion) -> dict[str, Any]:
    now = timezone.now()
    since = now - timedelta(days=LIVE_DAYS)
    thresholds = breaker_thresholds()
    arms = []
    for arm in (Arm.PRODUCTION, Arm.CANARY, Arm.SHADOW):
        perf = arm_performance(
            arm=arm, since=since, until=now, outcome_days=thresholds.outcome_days, model_version_id=version.pk
        )
        if perf.predictions:
            arms.append(
                {
                    "arm": arm,
                    "predictions": perf.predictions,
                    "decisions": perf.decisions,
                    "overridden": perf.overridden,
                    "override_rate": perf.override_rate,
                    "error_rate": perf.error_rate,
                    "adverse": perf.adverse,
                }
            )
    drift = DriftReport.objects.filter(model_version=version).order_by("-created_at", "-pk").first()
    drift_part: dict[str, Any] | None = None
    if drift is not None:
        subgroups = subgroup_accuracy(drift.subgroups)
        drift_part = {
            "id": drift.pk,
            "as_of": _ts(drift.as_of),
            "severity": drift.severity,
            "severity_label": drift.get_severity_display(),
            "window_days": drift.window_days,
            "n_current": drift.n_current,
            "n_reference": drift.n_reference,
            "drifted": [
                FEATURE_LABELS.get(name, "the model's prediction" if name == "prediction" else name)
                for name in drift.drifted
            ],
            "subgroup_accuracy": {"n": subgroups.n, "accuracy": subgroups.accuracy, "min_rows": subgroups.min_rows},
        }
    decisions = live_decisions(version, start=None, end=None)
    min_rows = int(settings.MODEL_GATE_FAIRNESS_MIN_GROUP)
    correct = [t == p for t, p in zip(decisions.y_true, decisions.y_pred, strict=True)]
    groups = []
    for name in SENSITIVE_ATTRIBUTES:
        tally: dict[str, list[int]] = {}
        for value, ok in zip(decisions.sensitive[name], correct, strict=True):
            counts = tally.setdefault(value, [0, 0])
            counts[0] += 1
            counts[1] += int(ok)
        for group, (n, right) in sorted(tally.items()):
            groups.append(
                {
                    "attribute": name,
                    "attribute_label": ATTRIBUTE_LABELS[name],
                    "group": group,
                    "n": n,
                    "compared": n >= min_rows,
                    "accuracy": right / n if n >= min_rows else None,
                }
            )
    return {
        "window_days": LIVE_DAYS,
        "arms": arms,
        "drift": drift_part,
        "clinician_decisions": decisions.n,
        "agreement_with_clinicians": (sum(correct) / decisions.n) if decisions.n else None,
        "subgroup_min_rows": min_rows,
        "subgroups": groups,
        "note": "Accuracy here is agreement of the proposed action with the clinician's final step, over every "
        "decided proposal of this version; groups under the minimum are counted, not compared",
    }


# --- The document --------------------------------------------------------------------------------------


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    return version_parameters(raw)


def build(request: BuildRequest) -> ReportDocument:
    version = version_of(request.parameters)
    lineage = model_version_lineage(version)
    run, snapshot = lineage.run, lineage.snapshot
    data = validation_data(version)
    classes = list(version.classes)
    request.progress(1, 4)
    metrics = _bootstrap_metrics(data.proba, data.y)
    request.progress(2, 4)
    shap = shap_document(version_global_shap(version))
    request.progress(3, 4)
    calibration = lineage.gates.get(CalibrationGateResult)
    policy = ApprovalPolicy.objects.order_by("-version").first()
    representativeness = _representativeness(data)
    live = _live(version)
    fairness = _fairness_summary(lineage)
    plan = _plan(lineage)
    gates = _gates(lineage)
    signoffs = [
        {"manifestation": s.manifestation, "role": s.role, "verified": s.verified, "acknowledged": list(s.acknowledged)}
        for s in lineage.signoffs
    ]
    history = [
        {
            "at": _ts(m.at),
            "arm": m.arm,
            "towards": m.towards,
            "by": m.by,
            "reason": m.reason,
            "is_rollback": m.is_rollback,
        }
        for m in lineage.history
    ]
    provenance = [
        {"provenance": k, "label": label_of(PROVENANCE_LABELS, k), "n": v, "pct": _pct(int(v), snapshot.row_count)}
        for k, v in sorted(snapshot.provenance_counts.items())
    ]
    developer = run.requested_by
    policy_words = (
        f"approval policy v{policy.version}: a proposal reaches the patient without review only when its step change "
        f"is within the patient's autonomy bounds (at most {policy.max_step_change} step), its confidence is at least "
        f"{policy.min_confidence:.0%}, no safety alert is open, autonomy is on for the patient and there are at "
        f"least {policy.min_readings} readings in {policy.min_readings_window_days} days; every other proposal "
        "waits for a clinician"
        if policy
        else "no approval policy is declared yet: every proposal waits for a clinician"
    )
    ages = data.X[:, data.feature_names.index("age")] if "age" in data.feature_names else data.X[:0, 0]
    age_range = f"{int(ages.min())}–{int(ages.max())}" if len(ages) else "unknown"
    limitations = _limitations(fairness, data, provenance, live)
    monitoring = _monitoring_schedule()
    n_validation = len(data.y)

    model_details = {
        "name": "Home blood-pressure titration model (bp-titration)",
        "overview": INTENDED_USE,
        "version": {
            "name": version.sha256,
            "short": version.short_hash,
            "date": _ts(version.created_at),
            "diff": "content-addressed by the SHA-256 of its ONNX bytes; any change is a new version",
        },
        "approval_state": version.approval_state,
        "approval_label": words(APPROVAL_WORDS, version.approval_state),
        "serving_on": list(lineage.serving_on),
        "owners": [
            {
                "name": developer.signature_name if developer else "system",
                "contact": _contact(developer),
                "role": "ML engineer who trained it",
            }
        ]
        + [{"name": s["manifestation"], "contact": "", "role": s["role"]} for s in signoffs],
        "licenses": [{"custom_text": "internal clinical use by the deploying organisation; not distributed"}],
        "references": [{"reference": "docs/reports-model.md"}, {"reference": "docs/cohort.md"}],
        "regulatory_requirements": "ONC HTI-1 predictive DSI source attributes (45 CFR 170.315(b)(11)(iv)(B)); "
        "21 CFR Part 11-style e-signatures on sign-offs",
        "manifest": {
            "sha256": version.manifest_sha256,
            "key_id": version.manifest_key_id,
            "verification": str(lineage.manifest),
            "ok": lineage.manifest.ok,
        },
        "artifacts": {
            "onnx_sha256": version.sha256,
            "sklearn_sha256": version.sklearn_sha256,
            "background_sha256": version.background_sha256,
        },
    }
    model_parameters = {
        "model_architecture": version.get_family_display(),
        "family": version.family,
        "training_run": {
            "id": run.pk,
            "params": run.params,
            "seed": run.seed,
            "code_version": run.code_version,
            "library_versions": run.library_versions,
            "split": SPLIT_METHOD,
        },
        "data": {
            "training": {
                "snapshot_sha256": snapshot.sha256,
                "rows": snapshot.row_count,
                "training_rows": snapshot.row_count - n_validation,
                "time_start": _ts(snapshot.time_start),
                "time_end": _ts(snapshot.time_end),
                "feature_set_version": snapshot.feature_set_version,
                "label_provenance": provenance,
                "class_counts": snapshot.class_counts,
                "quality_passed": snapshot.quality_passed,
                "age_range_validation": age_range,
            },
            "eval": {"rows": n_validation, "source": "the seeded validation split of the same snapshot"},
            "representativeness": representativeness,
        },
        "input_format": [{"name": n, "label": FEATURE_LABELS.get(n, n)} for n in version.feature_names],
        "output_format": f"Class probabilities over {', '.join(classes)}; the argmax is the proposed action; top "
        "SHAP factors explain it",
    }
    quantitative_analysis: dict[str, Any] = {
        "performance_metrics": metrics,
        "calibration": {
            "ece": calibration.ece if calibration else None,
            "bound": calibration.bound if calibration else None,
            "rows": calibration.n if calibration else None,
            "bins": [
                {"lower": b[0], "confidence": b[1], "accuracy": b[2], "rows": b[3]}
                for b in (calibration.bins if calibration else ())
            ],
        },
        "graphics": {
            "description": "calibration (reliability) plot of the validation rows; global mean |SHAP|",
            "collection": ["calibration", "shap"],
        },
        "fairness": fairness,
        "global_shap": {"explainer": explainer_words(version), "rows": n_validation, "features": shap},
    }
    considerations = {
        "users": [USERS],
        "use_cases": [INTENDED_USE, f"Augments clinical management (its decision role): {policy_words}."],
        "out_of_scope": [OUT_OF_SCOPE],
        "limitations": limitations,
        "tradeoffs": [
            "A lower confidence bound delivers more proposals without review and fewer reach a clinician; the "
            f"bound is {policy.min_confidence:.0%} in the current policy."
            if policy
            else "No approval policy is declared yet.",
            "The gradient-boosted family scored higher balanced accuracy on the demo cohort than the logistic one, "
            "at the cost of a less transparent model; SHAP explains both exactly.",
        ],
        "ethical_considerations": [
            {
                "name": "PPG measurement bias by skin tone (under-reading blood pressure on darker skin)",
                "mitigation_strategy": "source-aware features (bp-features/2): every blood-pressure feature is "
                "computed from cuff readings only and the wearable's estimates are separate features, so a "
                "wearable's under-reading cannot move the cuff means the clinician and the model act on; the "
                "fairness gate (equalized odds and TPR ratios by skin tone, sex, age band, race and ethnicity, and "
                "their intersections) is enforced; the safety sign-off acknowledges every fairness finding; "
                "monitoring compares accuracy by skin tone against clinicians; crisis rules run on every reading",
            },
            {
                "name": "Automation bias: clinicians accepting proposals unread",
                "mitigation_strategy": "major proposals need a signed decision with a reason; override rates are "
                "monitored per arm and a canary is rolled back when its override rate exceeds production's",
            },
        ],
    }
    document = document_header(SPEC, request) | {
        "model_details": model_details,
        "model_parameters": model_parameters,
        "quantitative_analysis": quantitative_analysis,
        "considerations": considerations,
        "gates": {
            "validated": lineage.gates.validated,
            "unreadable": lineage.gates_unreadable,
            "results": gates,
            "findings": lineage.gates.findings,
        },
        "change_control_plan": plan,
        "signoffs": {"entries": signoffs, "missing": list(lineage.missing_signoffs)},
        "serving_history": history,
        "monitoring": monitoring,
        "live_evidence": live,
        "simulated_clinical_value": simulation_card_section(model_sha256=version.sha256),
        "hti1_rule": HTI1_RULE,
    }
    document["chai_applied_model_card"] = _chai(document, policy_words)
    document["hti1_source_attributes"] = hti1_source_attributes(document, policy_words)
    charts = {
        "calibration": reliability_svg(
            [
                (b["lower"], b["confidence"], b["accuracy"], b["rows"])
                for b in quantitative_analysis["calibration"]["bins"]
            ],
            title="Calibration on the validation rows",
            ece=quantitative_analysis["calibration"]["ece"],
        ),
        "shap": bar_chart_svg(
            [(f["label"], round(f["mean_abs_shap"], 4)) for f in shap[:12]],
            title="Global mean |SHAP|, all classes (log-odds)",
        ),
    }
    request.progress(4, 4)
    return ReportDocument(data=document, patient_ids=frozenset(), charts=charts)


def _contact(user: User | None) -> str:
    if user is None:
        return "the deployment's ML engineers (no requester recorded: the run was scheduled)"
    return user.email or f"user {user.username} (no e-mail on record), through the portal's model pages"


def _limitations(
    fairness: Mapping[str, Any], data: ValidationData, provenance: list[dict[str, Any]], live: Mapping[str, Any]
) -> list[str]:
    out = [
        "PPG bias by skin tone: night readings from optical wearables under-read blood pressure on darker skin "
        "(in the synthetic cohort up to 10/5 mmHg systolic/diastolic for Fitzpatrick type 6, with extra noise on "
        "types 5–6; docs/cohort.md). Since bp-features/2 the model's blood-pressure features come from cuff readings "
        "only and the wearable has features of its own; with no cuff reading this week the cuff means read as 'at "
        "target' and their count as zero.",
        "Demographic parity and selection-rate ratios are reported but not judged (MODEL_GATE_FAIRNESS_PARITY_JUDGED):"
        " patients over 75 have a higher systolic target and so need fewer increases; a group's TPR is judged only "
        "with enough true positives (MODEL_GATE_FAIRNESS_MIN_RATE_ROWS).",
        f"Validated on {len(data.y)} held-out rows of its own snapshot only: intervals are wide, and there is no "
        "external validation.",
    ]
    simulated = sum(p["n"] for p in provenance if p["provenance"] == "simulated")
    if simulated:
        out.append(
            f"{simulated} of the {sum(p['n'] for p in provenance)} training labels are simulated (the "
            "synthetic cohort's clinician simulator), not real clinician decisions."
        )
    if fairness.get("failures"):
        out.append(
            f"The fairness gate measured {len(fairness['failures'])} failure(s) on the validation rows"
            f"{'' if fairness.get('enforced') else ' (not enforced: acknowledged at the safety sign-off)'}; "
            "see the fairness summary."
        )
    if live.get("drift") and live["drift"]["severity"] == "severe":
        out.append(
            f"The latest drift report ({live['drift']['as_of']}) is severe: {', '.join(live['drift']['drifted'])}."
        )
    out.append("Fitzpatrick type is a coarse proxy for skin pigmentation; it is the field the data model has.")
    return out


def _monitoring_schedule() -> dict[str, Any]:
    beat: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    drift_seconds = float(beat.get("drift-report-daily", {}).get("schedule", 0))
    breaker_seconds = float(beat.get("canary-breaker-check", {}).get("schedule", 0))
    thresholds = breaker_thresholds()
    return {
        "drift_every_hours": drift_seconds / 3600 if drift_seconds else None,
        "drift_window_days": settings.DRIFT_WINDOW_DAYS,
        "breaker_every_minutes": breaker_seconds / 60 if breaker_seconds else None,
        "breaker": {
            "min_decisions": thresholds.min_decisions,
            "override_margin_pp": thresholds.override_margin * 100,
            "error_margin_pp": thresholds.error_margin * 100,
            "outcome_days": thresholds.outcome_days,
        },
        "text": (
            f"Drift (per-feature PSI and tests, prediction drift, clinician override rate, subgroup accuracy by sex "
            f"and skin tone against clinician decisions) every {drift_seconds / 3600:g} h over the last "
            f"{settings.DRIFT_WINDOW_DAYS} days, and on demand; a severe report raises an alert and starts a "
            "candidate retraining run, which never promotes itself. A canary's circuit breaker is checked every "
            f"{breaker_seconds / 60:g} min and rolls it back when its override or error rate exceeds production's by "
            f"{thresholds.override_margin * 100:g} / {thresholds.error_margin * 100:g} points (at least "
            f"{thresholds.min_decisions} decisions). Serving re-verifies the signed manifest and artifact hashes "
            "before any session and on a schedule; a mismatch falls back to rules only."
        ),
        "update_schedule": (
            "No fixed calendar: a retrain is a new version (new snapshot of clinician-labelled decisions), run "
            "through every gate and the change-control plan, and needs both sign-offs again before it can serve; "
            "it starts after severe drift or on an ML engineer's request."
        ),
    }


# --- CHAI applied model card -----------------------------------------------------------------------------


def _metric_text(metrics: list[dict[str, Any]]) -> str:
    parts = []
    for m in metrics:
        ci = m["confidence_interval"]
        interval = (
            f" (95 % CI {ci['lower_bound']:.3f}–{ci['upper_bound']:.3f})" if ci["lower_bound"] is not None else ""
        )
        parts.append(f"{m['label']} {m['value']:.3f}{interval}")
    return "; ".join(parts)


def _chai(doc: Mapping[str, Any], policy_words: str) -> dict[str, Any]:
    details, params, qa, cons = (
        doc["model_details"],
        doc["model_parameters"],
        doc["quantitative_analysis"],
        doc["considerations"],
    )
    training = params["data"]["training"]
    fairness = qa["fairness"]
    live = doc["live_evidence"]
    return {
        "basic_info": {
            "model_name": details["name"],
            "model_developer": details["owners"][0]["name"],
            "developer_contact": details["owners"][0]["contact"],
        },
        "release_info": {
            "release_stage": details["approval_label"],
            "release_date": details["version"]["date"],
            "release_version": details["version"]["name"],
            "global_availability": "deployed within this organisation only",
            "regulatory_approval": "none recorded in the registry",
        },
        "model_summary": {
            "summary": f"{details['overview']} {params['model_architecture']}, trained on "
            f"{training['rows']} labelled decision points.",
            "keywords": ["hypertension", "titration", "home monitoring"],
        },
        "uses_and_directions": {
            "intended_use_and_workflow": cons["use_cases"][0],
            "primary_intended_users": USERS,
            "how_to_use": f"Proposals appear in the clinician review queue with probabilities and top SHAP factors; "
            f"{policy_words}.",
            "targeted_patient_population": "adults enrolled in home hypertension management with a regimen ladder; "
            f"validation ages {training['age_range_validation']}",
            "cautioned_out_of_scope_settings": OUT_OF_SCOPE,
        },
        "warnings": {
            "known_risks_and_limitations": " ".join(cons["limitations"]),
            "known_biases_or_ethical_considerations": "; ".join(e["name"] for e in cons["ethical_considerations"]),
            "clinical_risk_level": "moderate: medication changes, always within the patient's ladder and bounds, "
            "with clinician review for every major change",
        },
        "trust_ingredients": {
            "ai_system_facts": {
                "outcomes_and_outputs": params["output_format"],
                "model_type": params["model_architecture"],
                "foundation_models": "none",
                "input_data_source": "home cuff and wearable (PPG) readings, dose logs and the regimen, through "
                "the patient API; one feature module serves training and scoring ("
                + training["feature_set_version"]
                + ")",
                "output_and_input_data_types": f"input: {len(params['input_format'])} numeric features; output: "
                "three class probabilities",
                "development_data_characterization": f"snapshot {training['snapshot_sha256'][:12]}: "
                f"{training['rows']} rows from {training['time_start']} to {training['time_end']}; label provenance "
                + ", ".join(f"{p['label']} {p['n']}" for p in training["label_provenance"]),
                "bias_mitigation_approaches": "fairness gate (bounds on equalized-odds and demographic-parity "
                "differences and group ratios by sex, age band, race/ethnicity, skin tone and intersections); "
                "sensitive attributes are not model inputs; monitoring of subgroup accuracy",
                "ongoing_maintenance": doc["monitoring"]["text"],
                "security": "signed manifest (Ed25519) verified before serving; artifacts content-addressed; "
                "append-only audit ledger with signed checkpoints and an external witness",
                "transparency": "per-recommendation top SHAP factors with plain-language reasons for patients; "
                "decision records, this model card, fairness and explainability reports",
            },
            "transparency_information": {
                "funding_source": "the deploying organisation (no external funding recorded)",
                "third_party_information": "open-source libraries: "
                + ", ".join(f"{k} {v}" for k, v in sorted(params["training_run"]["library_versions"].items())),
                "stakeholders_consulted": "clinicians and clinical safety officers through the e-signed sign-offs: "
                + ("; ".join(s["manifestation"] for s in doc["signoffs"]["entries"]) or "none yet"),
            },
        },
        "key_metrics": {
            "usefulness_usability_efficacy": {
                "metric_goal": "non-inferior to the production model on held-out rows (gate), balanced accuracy "
                "above the change-control plan's floor",
                "result": _metric_text(qa["performance_metrics"]),
                "interpretation": "held-out validation on the same source as training",
                "test_type": "internal hold-out (seeded split)",
                "testing_data_description": f"{params['data']['eval']['rows']} validation rows",
                "validation_process_and_justification": "gates: "
                + "; ".join(f"{g['label']} {g['status_label']}" for g in doc["gates"]["results"]),
            },
            "fairness_equity": {
                "metric_goal": "equalized-odds and demographic-parity differences within the policy bounds",
                "result": fairness.get("summary", "no fairness gate stored"),
                "interpretation": f"{len(fairness.get('failures', []))} failure(s) measured",
                "test_type": "fairlearn MetricFrame on the validation rows",
                "testing_data_description": "validation rows by sex, age band, race/ethnicity, skin tone",
                "validation_process_and_justification": "fairness gate; full report: "
                + fairness.get("full_report", "manage.py export fairness"),
            },
            "safety_reliability": {
                "metric_goal": "calibrated confidence (the policy delivers on confidence) and ONNX/sklearn parity",
                "result": f"ECE {qa['calibration']['ece']:.3f} (bound {qa['calibration']['bound']:g})"
                if qa["calibration"]["ece"] is not None
                else "no calibration gate stored",
                "interpretation": "an over-confident model would skip reviews it should not",
                "test_type": "calibration and ONNX parity gates",
                "testing_data_description": f"{params['data']['eval']['rows']} validation rows",
                "validation_process_and_justification": "live: agreement with clinicians "
                + (
                    f"{live['agreement_with_clinicians']:.1%} over {live['clinician_decisions']} decisions"
                    if live["agreement_with_clinicians"] is not None
                    else "not measured yet (no decisions)"
                ),
            },
        },
        "resources": {
            "evaluation_references": "this card's gates and the fairness and explainability reports of the version",
            "clinical_trial": "none",
            "peer_reviewed_publications": "none",
            "reimbursement_status": "not applicable",
            "patient_consent_or_disclosure": "patients see every proposal delivered to them with plain-language "
            "reasons, and their own access and disclosure accounting",
        },
    }


# --- ONC HTI-1 source attributes ------------------------------------------------------------------------

# 45 CFR 170.315(b)(11)(iv)(B)(1)–(9): the 31 source attributes of a predictive DSI. (iv)(A) is the list for
# evidence-based DSIs; its items (5)–(13) are the demographic and social variables (race, ethnicity, language,
# sexual orientation, gender identity, sex, date of birth, social determinants of health, health status
# assessments) that (B)(4)(ii)–(iii) and (B)(6)(iii) refer to.
HTI1_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("(1)(i)", "Name and contact information for the intervention developer"),
    ("(1)(ii)", "Funding source of the technical implementation for the intervention(s) development"),
    ("(1)(iii)", "Description of value that the intervention produces as an output"),
    (
        "(1)(iv)",
        "Whether the intervention output is a prediction, classification, recommendation, evaluation, "
        "analysis, or other type of output",
    ),
    ("(2)(i)", "Intended use of the intervention"),
    ("(2)(ii)", "Intended patient population(s) for the intervention's use"),
    ("(2)(iii)", "Intended user(s)"),
    (
        "(2)(iv)",
        "Intended decision-making role for which the intervention was designed to be used/for (e.g., "
        "informs, augments, replaces clinical management)",
    ),
    (
        "(3)(i)",
        "Description of tasks, situations, or populations where a user is cautioned against applying the intervention",
    ),
    ("(3)(ii)", "Known risks, inappropriate settings, inappropriate uses, or known limitations"),
    ("(4)(i)", "Exclusion and inclusion criteria that influenced the training data set"),
    ("(4)(ii)", "Use of variables in paragraph (b)(11)(iv)(A)(5)-(13) as input features"),
    (
        "(4)(iii)",
        "Description of demographic representativeness according to variables in paragraph "
        "(b)(11)(iv)(A)(5)-(13) including, at a minimum, those used as input features in the intervention",
    ),
    ("(4)(iv)", "Description of relevance of training data to intended deployed setting"),
    (
        "(5)(i)",
        "Description of the approach the intervention developer has taken to ensure that the intervention's "
        "output is fair",
    ),
    ("(5)(ii)", "Description of approaches to manage, reduce, or eliminate bias"),
    (
        "(6)(i)",
        "Description of the data source, clinical setting, or environment where an intervention's validity "
        "and fairness has been assessed, other than the source of training and testing data",
    ),
    ("(6)(ii)", "Party that conducted the external testing"),
    (
        "(6)(iii)",
        "Description of demographic representativeness of external data according to variables in "
        "paragraph (b)(11)(iv)(A)(5)-(13) including, at a minimum, those used as input features in the "
        "intervention",
    ),
    ("(6)(iv)", "Description of external validation process"),
    ("(7)(i)", "Validity of intervention in test data derived from the same source as the initial training data"),
    ("(7)(ii)", "Fairness of intervention in test data derived from the same source as the initial training data"),
    (
        "(7)(iii)",
        "Validity of intervention in data external to or from a different source than the initial training data",
    ),
    (
        "(7)(iv)",
        "Fairness of intervention in data external to or from a different source than the initial training data",
    ),
    (
        "(7)(v)",
        "References to evaluation of use of the intervention on outcomes, including bibliographic citations "
        "or hyperlinks to evaluations of how well the intervention reduced morbidity, mortality, length of "
        "stay, or other outcomes",
    ),
    ("(8)(i)", "Description of process and frequency by which the intervention's validity is monitored over time"),
    ("(8)(ii)", "Validity of intervention in local data"),
    (
        "(8)(iii)",
        "Description of the process and frequency by which the intervention's fairness is monitored over time",
    ),
    ("(8)(iv)", "Fairness of intervention in local data"),
    ("(9)(i)", "Description of process and frequency by which the intervention is updated"),
    (
        "(9)(ii)",
        "Description of frequency by which the intervention's performance is corrected when risks related "
        "to validity and fairness are identified",
    ),
)
NO_EXTERNAL = (
    NOT_APPLICABLE + "no external validation has been performed; this version was validated only on held-out rows "
    "of its own training snapshot (same source), and live agreement with clinicians is local data, reported under "
    "(8)."
)


def _representativeness_text(rows: list[dict[str, Any]], column: str) -> str:
    return "; ".join(
        f"{r['label']}: " + ", ".join(f"{g['group']} {g[column]:g} %" for g in r["groups"] if g[column]) for r in rows
    )


def hti1_source_attributes(doc: Mapping[str, Any], policy_words: str) -> list[dict[str, str]]:
    """The 31 attributes as {id, name, value}; every value filled, or "Not applicable: <why>"."""
    details, params, qa = doc["model_details"], doc["model_parameters"], doc["quantitative_analysis"]
    training, live, fairness = params["data"]["training"], doc["live_evidence"], qa["fairness"]
    representativeness = params["data"]["representativeness"]
    features = {f["name"] for f in params["input_format"]}
    owner = details["owners"][0]
    compared = [g for g in live["subgroups"] if g["compared"]]
    gaps = {r["label"]: r["max_gap_pp_training_vs_enrolled"] for r in representativeness}
    values = {
        "(1)(i)": f"{owner['name']} ({owner['role']}); contact: {owner['contact']}",
        "(1)(ii)": NOT_APPLICABLE + "the model is trained in-house by the deploying organisation; the registry "
        "records no external funding for its development.",
        "(1)(iii)": params["output_format"] + ".",
        "(1)(iv)": "Recommendation: a proposed titration action, from a three-class classification (decrease, "
        "maintain, increase).",
        "(2)(i)": INTENDED_USE,
        "(2)(ii)": doc["chai_applied_model_card"]["uses_and_directions"]["targeted_patient_population"] + ".",
        "(2)(iii)": USERS,
        "(2)(iv)": f"Augments clinical management: {policy_words}. Safety rules run before the model, and a "
        "clinical safety officer can stop the AI for everyone or one clinic.",
        "(3)(i)": OUT_OF_SCOPE,
        "(3)(ii)": " ".join(doc["considerations"]["limitations"]),
        "(4)(i)": f"Every label of feature set {training['feature_set_version']} up to the snapshot time "
        f"({training['time_start']} to {training['time_end']}, {training['rows']} rows), each a decision point with "
        "a 14-day feature window; the snapshot passed its data-quality checks (schema, null rates, ranges)"
        if training["quality_passed"]
        else "The snapshot failed its data-quality checks (see gates).",
        "(4)(ii)": "Date of birth: used, as age in years (feature 'age'). "
        + ("Health status: used, as the comorbidities diabetes and CKD. " if {"diabetes", "ckd"} & features else "")
        + "Race, ethnicity, language, sexual orientation, gender identity, sex and social determinants of health: "
        "not used as input features (sex, race/ethnicity and skin tone are kept only to audit fairness).",
        "(4)(iii)": "Training rows by " + _representativeness_text(representativeness, "training_pct") + ".",
        "(4)(iv)": "Training rows come from this deployment's own enrolled patients (label provenance: "
        + ", ".join(f"{p['label']} {p['n']}" for p in training["label_provenance"])
        + "). Largest gap between training rows and patients enrolled now, in percentage points: "
        + ", ".join(f"{k} {v:g}" for k, v in gaps.items())
        + ".",
        "(5)(i)": "A fairness gate before validation: fairlearn MetricFrame on the validation rows by sex, age band, "
        "race/ethnicity, skin tone and intersections; equalized-odds and demographic-parity differences and group "
        f"ratios judged against policy bounds (equalized-odds difference ≤ {fairness.get('bound', 'n/a')}, ratios "
        f"≥ {fairness.get('min_group_ratio', 'n/a')}). This version: {fairness.get('summary', 'no gate stored')}.",
        "(5)(ii)": "Sensitive attributes are not model inputs; a failing fairness gate rejects the version (or, "
        "when not enforced, becomes a finding the clinical safety officer must acknowledge in the signed sign-off); "
        "small groups are reported, not judged; live subgroup accuracy is monitored; a change-control plan caps the "
        "equalized-odds difference a retrain may have without a full review.",
        "(6)(i)": NO_EXTERNAL,
        "(6)(ii)": NOT_APPLICABLE + "no external testing has been done, so no party conducted it.",
        "(6)(iii)": NOT_APPLICABLE + "there are no external data; the representativeness of the training and "
        "validation rows is under (4)(iii).",
        "(6)(iv)": NO_EXTERNAL,
        "(7)(i)": _metric_text(qa["performance_metrics"])
        + (f"; calibration ECE {qa['calibration']['ece']:.3f}" if qa["calibration"]["ece"] is not None else "")
        + f" (on {params['data']['eval']['rows']} validation rows of the training snapshot).",
        "(7)(ii)": f"{fairness.get('summary', 'no fairness gate stored')}; "
        f"{len(fairness.get('failures', []))} failure(s) against the policy bounds.",
        "(7)(iii)": NO_EXTERNAL,
        "(7)(iv)": NO_EXTERNAL,
        "(7)(v)": NOT_APPLICABLE + "no evaluation of the intervention's effect on outcomes has been published; "
        "the system monitors adverse outcomes locally (a P0 safety alert within "
        f"{doc['monitoring']['breaker']['outcome_days']} days of delivered advice counts as an error).",
        "(8)(i)": doc["monitoring"]["text"],
        "(8)(ii)": (
            f"Agreement of the proposed action with the clinician's final step: "
            f"{live['agreement_with_clinicians']:.1%} over {live['clinician_decisions']} decisions"
            + "".join(
                f"; {a['arm']} arm, last {live['window_days']} days: {a['decisions']} decisions, override "
                f"rate {a['override_rate']:.1%}"
                for a in live["arms"]
                if a["override_rate"] is not None
            )
            + "."
        )
        if live["clinician_decisions"]
        else (
            NOT_APPLICABLE + "no clinician has decided a proposal of this version yet, so there is no local data "
            "to measure validity on."
        ),
        "(8)(iii)": "Every drift report (daily, and on demand) compares accuracy against clinician decisions by sex "
        "and skin tone; the fairness report recomputes every measure on live clinician-labelled decisions over any "
        "date range (manage.py export fairness <version> --from --to).",
        "(8)(iv)": (
            "Agreement with clinicians by group: "
            + "; ".join(f"{g['attribute_label']} {g['group']} {g['accuracy']:.1%} (n={g['n']})" for g in compared)
            + "."
        )
        if compared
        else (
            NOT_APPLICABLE + f"no group has {live['subgroup_min_rows']} or more clinician-decided proposals of this "
            f"version yet ({live['clinician_decisions']} decisions in all), too few to compare groups."
        ),
        "(9)(i)": doc["monitoring"]["update_schedule"],
        "(9)(ii)": "At once for a canary (the circuit breaker rolls it back automatically); production is rolled "
        "back in one signed action, and a severe drift report raises an alert the same day and starts a candidate "
        "retraining run, which reaches patients only after every gate and both sign-offs.",
    }
    return [
        {"id": f"(b)(11)(iv)(B){paragraph}", "name": name, "value": values[paragraph].strip()}
        for paragraph, name in HTI1_ATTRIBUTES
    ]


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.MODEL_CARD,
        title="Model card",
        schema="model_card",
        schema_version="1.0",
        template="compliance/reports/model_card.html",
        formats=frozenset({ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF}),
        file_stem="model-card",
        prepare=prepare,
        build=build,
    )
)
