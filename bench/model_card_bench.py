"""Model card PDF time (issue 9), against the decision-record PDF of the same run as the baseline.

Each figure is a whole export job as the portal and `manage.py export` run it (export_request + export_run:
prepare, build the JSON document, render HTML and PDF with WeasyPrint, hash and audit), timed with
time.perf_counter:
- cold: the first model card in this process (imports shap, fairlearn and WeasyPrint, loads the snapshot, scores
  the validation rows, builds the explainer);
- warm: the median of the next ones (the version's validation rows and SHAP values are kept per process, so these
  are mostly the card's own statistics and WeasyPrint);
- the baseline: a decision-record PDF (one recommendation, about two pages), cold and warm likewise, run first so
  the card's cold figure does not carry WeasyPrint's own import.

It needs a database with a deployed model and a decided recommendation: bench/run.py gives it a copy of the seed
template (BENCH_DATABASE_URL), which `manage.py demo_build` built. Run alone, it uses that variable (default
clinaiops_bench_adhoc) and refuses an empty database.

    BENCH_DATABASE_URL=postgres://…/a_seeded_copy .venv/bin/python bench/model_card_bench.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _django import django_setup
from harness.report import Figure, figures_print, machine, results_write

WARM_ROUNDS = int(os.environ.get("BENCH_MODEL_CARD_ROUNDS", "3"))


def timed(job: Callable[[], object]) -> float:
    started = time.perf_counter()
    job()
    return time.perf_counter() - started


def main() -> None:
    django_setup(fresh=False)
    from clinaiops.core.models import Role, User
    from clinaiops.loops.models import ReviewDecision
    from compliance.models import ExportStatus
    from compliance.services import export_request, export_run
    from inference.selectors import serving_version

    officer = User.objects.filter(role=Role.COMPLIANCE_OFFICER, is_active=True).order_by("pk").first()
    # Only the id: the decision's reason is encrypted, and the bench needs no key to read it.
    recommendation_id = ReviewDecision.objects.order_by("pk").values_list("recommendation_id", flat=True).first()
    version = serving_version()
    if officer is None or recommendation_id is None or version is None:
        raise SystemExit("the bench database needs a compliance officer, a decided recommendation and a production "
                         "model: give it a copy of the seed template (bench/run.py does)")  # fmt: skip

    def export(kind: str, parameters: dict[str, str]) -> Callable[[], object]:
        def job() -> object:
            queued = export_request(actor=officer, kind=kind, parameters=parameters, formats=["pdf"], enqueue=False)
            done = export_run(export_id=queued.pk)
            if done.status != ExportStatus.FINISHED:
                raise SystemExit(f"{kind} export #{done.pk} failed: {done.error_message}")
            return done

        return job

    decision_job = export("decision_record", {"recommendation_id": str(recommendation_id)})
    card_job = export("model_card", {"version": "production"})
    decision_cold = timed(decision_job)
    decision_warm = statistics.median(timed(decision_job) for _ in range(WARM_ROUNDS))
    card_cold = timed(card_job)
    card_warm = statistics.median(timed(card_job) for _ in range(WARM_ROUNDS))
    print(f"  production model {version.short_hash} ({version.get_family_display()}), recommendation "
          f"{recommendation_id}; {WARM_ROUNDS} warm rounds each", flush=True)  # fmt: skip

    figures = [
        Figure("model card", "model card PDF export, cold (first in the process)", card_cold, "s",
               baseline=decision_cold, baseline_name="decision-record PDF, cold", better="lower"),
        Figure("model card", "model card PDF export, warm (median)", card_warm, "s",
               baseline=decision_warm, baseline_name="decision-record PDF, warm", better="lower"),
    ]  # fmt: skip
    figures_print("model card figures (baseline: the decision-record PDF of the same run)", figures)
    path = results_write("model_card.json", {"machine": machine(), "figures": [f.as_dict() for f in figures]})
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
