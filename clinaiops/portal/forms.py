from __future__ import annotations

from django import forms

from clinaiops.core.regimen import MAX_STEP, MIN_STEP, REGIMEN_LADDER
from clinaiops.loops.models import DecisionOutcome


class ReviewDecisionForm(forms.Form):
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
        help_text="Only for Modify.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your password to sign this decision.",
    )

    def clean_to_step(self) -> int | None:
        value = self.cleaned_data.get("to_step")
        if value is not None and not MIN_STEP <= value <= MAX_STEP:
            raise forms.ValidationError("Off the regimen ladder.")
        return value
