"""The simulation page (issue 10): the latest `manage.py simulate` results, for the clinical safety officer and the
ML engineer. It reads the results file (governance.simulation_results) and draws each figure per arm; nothing here
runs a simulation or touches a patient record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString, mark_safe

from clinaiops.core.models import Role
from clinaiops.portal.access import roles_required
from clinaiops.portal.charts_simulation import arm_bars_svg
from governance.simulation_results import ArmResult, SimulationResults, simulation_results_latest


@dataclass(frozen=True)
class Chart:
    title: str
    svg: SafeString


def _charts(results: SimulationResults) -> list[Chart]:
    """One bar chart per headline figure; the table below each carries the same numbers as text."""
    figures: list[tuple[str, Callable[[ArmResult], float], Callable[[float], str], float | None]] = [
        ("Patients at target at the end", lambda a: a.at_target_end, lambda v: f"{v:.0%}", 1.0),
        ("Time in range (share of patient-days)", lambda a: a.time_in_range, lambda v: f"{v:.0%}", 1.0),
        ("Clinician reviews per 100 patient-weeks", lambda a: a.reviews_per_100_patient_weeks, lambda v: f"{v:.0f}",
         None),
        ("Hypotension days (true SBP below 100)", lambda a: float(a.hypotension_events), lambda v: f"{v:.0f}", None),
    ]  # fmt: skip
    charts = []
    for title, value_of, shown, scale in figures:
        items = [(arm.short_label, value_of(arm), shown(value_of(arm))) for arm in results.arms]
        # Built from clinaiops.portal.svg, which escapes every label: safe to mark.
        charts.append(Chart(title, mark_safe(arm_bars_svg(items, title=title, scale=scale, width=720))))  # noqa: S308
    return charts


def _seconds(value: float | None) -> str:
    return "no crisis alert" if value is None else f"{value:.0f} s"


def _table(results: SimulationResults) -> list[tuple[str, list[str]]]:
    """The figures of every arm as words and numbers, one row per figure."""
    rows: list[tuple[str, Callable[[ArmResult], str]]] = [
        ("Patients", lambda a: f"{a.patients:,}"),
        ("Patient-days", lambda a: f"{a.patient_days:,}"),
        ("At target at the end", lambda a: f"{a.at_target_end:.1%}"),
        ("Time in range", lambda a: f"{a.time_in_range:.1%}"),
        ("Mean change in true systolic BP", lambda a: f"{a.mean_sbp_change:+.1f} mmHg"),
        ("Clinician reviews per 100 patient-weeks", lambda a: f"{a.reviews_per_100_patient_weeks:.1f}"),
        ("Office visits", lambda a: f"{a.office_visits:,}"),
        ("Hypotension days", lambda a: f"{a.hypotension_events:,}"),
        ("Crisis days", lambda a: f"{a.crisis_events:,}"),
        ("Crisis alerts raised", lambda a: f"{a.crisis_alerts:,}"),
        ("Longest time from a crisis reading to its alert", lambda a: _seconds(a.crisis_to_p0_max_seconds)),
        ("Step changes delivered without review", lambda a: f"{a.autonomous_step_changes:,}"),
        ("… of them outside the patient's bounds", lambda a: f"{a.autonomous_outside_bounds:,}"),
    ]
    return [(label, [cell(arm) for arm in results.arms]) for label, cell in rows]


def _subgroup_rows(arm: ArmResult) -> list[list[str]]:
    return [
        [s.attribute, s.group, f"{s.patients:,}", f"{s.at_target_end:.0%}", f"{s.time_in_range:.0%}",
         f"{s.mean_sbp_change:+.1f}", f"{s.reviews_per_100_patient_weeks:.1f}", f"{s.hypotension_events:,}"]
        for s in arm.subgroups
    ]  # fmt: skip


@roles_required(Role.SAFETY_OFFICER, Role.ML_ENGINEER)
def simulation(request: HttpRequest) -> HttpResponse:
    state = simulation_results_latest()
    context = {"nav": "simulation", "state": state, "results": state.results}
    if state.results is not None:
        context.update(
            charts=_charts(state.results),
            table=_table(state.results),
            subgroups=[(arm.label, _subgroup_rows(arm)) for arm in state.results.arms],
        )
    return render(request, "portal/simulation.html", context)
