"""Forms of the stop switch page (clinaiops.portal.views.policy.ai_stop_page)."""

from __future__ import annotations

from django import forms

from clinaiops.care.models import CareTeam
from governance.models import AIStopScope
from governance.stop import REASON_MAX_LENGTH

_PASSWORD = forms.PasswordInput(attrs={"autocomplete": "current-password"})


class AIStopForm(forms.Form):
    scope = forms.ChoiceField(choices=AIStopScope.choices, widget=forms.RadioSelect, initial=AIStopScope.GLOBAL)
    care_team = forms.ModelChoiceField(
        queryset=CareTeam.objects.order_by("name"), required=False, label="Clinic", empty_label="(everyone)"
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=REASON_MAX_LENGTH, label="Why you are stopping the AI"
    )
    password = forms.CharField(widget=_PASSWORD, help_text="Re-enter your password to sign the stop.")


class AIResumeForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=REASON_MAX_LENGTH, label="Why it is safe to resume"
    )
    password = forms.CharField(widget=_PASSWORD, help_text="Re-enter your password to sign the resume.")
