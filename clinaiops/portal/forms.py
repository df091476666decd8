"""The portal's forms. They check shapes only; the services decide what is allowed and say why."""

from __future__ import annotations

from typing import Any

from django import forms

from clinaiops.core.errors import ApplicationError
from clinaiops.core.regimen import MAX_STEP, MIN_STEP, REGIMEN_LADDER
from clinaiops.loops.models import DecisionOutcome, Recommendation


class ReviewDecisionForm(forms.Form):
    """The e-signed decision on one proposal. Given the recommendation, the choices say what each one does to this
    patient ("Accept: increase to step 3"), and the step picker (used only for Modify) marks the current and the
    proposed steps."""

    outcome = forms.ChoiceField(
        choices=[
            (DecisionOutcome.ACCEPTED, "Accept the proposal"),
            (DecisionOutcome.MODIFIED, "Modify: choose another step"),
            (DecisionOutcome.REJECTED, "Reject: keep the current regimen"),
        ],
        widget=forms.RadioSelect,
    )
    to_step = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        choices=[("", "—")] + [(i, f"Step {i}: {label}") for i, label in enumerate(REGIMEN_LADDER)],
        label="New step",
        help_text="Only for Modify.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your password to sign this decision.",
    )

    def __init__(self, *args: Any, recommendation: Recommendation | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if recommendation is None:
            return
        rec = recommendation
        outcome = self.fields["outcome"]
        assert isinstance(outcome, forms.ChoiceField)
        outcome.choices = [
            (DecisionOutcome.ACCEPTED, f"Accept: {rec.action} to step {rec.to_step}"),
            (DecisionOutcome.MODIFIED, "Modify: choose another step"),
            (DecisionOutcome.REJECTED, f"Reject: stay on step {rec.from_step}"),
        ]

        def marked(step: int) -> str:
            notes = [note for note, at in (("current", rec.from_step), ("proposed", rec.to_step)) if at == step]
            return f" ({', '.join(notes)})" if notes else ""

        to_step = self.fields["to_step"]
        assert isinstance(to_step, forms.TypedChoiceField)
        to_step.choices = [("", "—")] + [(i, f"Step {i}: {label}{marked(i)}") for i, label in enumerate(REGIMEN_LADDER)]

    def clean_to_step(self) -> int | None:
        value = self.cleaned_data.get("to_step")
        if value is not None and not MIN_STEP <= value <= MAX_STEP:
            raise forms.ValidationError("Off the regimen ladder.")
        return value


class BoundsForm(forms.Form):
    autonomy_enabled = forms.BooleanField(required=False, label="Allow minor changes without review")
    max_step_change = forms.IntegerField(min_value=0, max_value=MAX_STEP, label="Largest step change")
    min_step = forms.IntegerField(min_value=MIN_STEP, max_value=MAX_STEP, label="Lowest step")
    max_step = forms.IntegerField(min_value=MIN_STEP, max_value=MAX_STEP, label="Highest step")
    min_confidence = forms.FloatField(min_value=0, max_value=1, label="Minimum model confidence")
    min_readings = forms.IntegerField(min_value=0, max_value=100, label="Minimum readings in the window")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your password to sign the new bounds.",
    )


class TargetForm(forms.Form):
    """The range checks are the service's (clinaiops.care.validation); the form only wants whole numbers."""

    target_sbp = forms.IntegerField(label="Systolic target (mmHg)")
    target_dbp = forms.IntegerField(label="Diastolic target (mmHg)")


class BreakGlassForm(forms.Form):
    patient_code = forms.CharField(max_length=16, label="Patient code", help_text="For example P-0187.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000, label="Why you need access")


class PolicyForm(forms.Form):
    crisis_sbp = forms.IntegerField(label="Crisis systolic ≥")
    crisis_dbp = forms.IntegerField(label="Crisis diastolic ≥")
    hypotension_sbp = forms.IntegerField(label="Hypotension systolic <")
    hypotension_dbp = forms.IntegerField(label="Hypotension diastolic <")
    hypotension_window_hours = forms.IntegerField(label="Hypotension window (hours)")
    hypotension_min_readings = forms.IntegerField(label="Low readings needed in the window")
    max_step_change = forms.IntegerField(label="Largest autonomous step change")
    min_step = forms.IntegerField(label="Lowest step")
    max_step = forms.IntegerField(label="Highest step")
    min_confidence = forms.FloatField(label="Minimum model confidence")
    min_readings = forms.IntegerField(label="Minimum recent readings")
    min_readings_window_days = forms.IntegerField(label="Readings window (days)")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your password to sign the new policy version.",
    )


def form_errors_from(form: forms.Form, exc: ApplicationError) -> None:
    """Show a service's refusal on the form: its message at the top, each field message at its field."""
    form.add_error(None, exc.message)
    for name, problems in exc.fields.items():
        for problem in problems:
            form.add_error(name if name in form.fields else None, problem)
