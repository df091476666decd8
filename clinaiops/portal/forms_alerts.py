"""Forms of the alert pages and the worklist's filters. They check shapes; the services decide and say why."""

from __future__ import annotations

from django import forms

from clinaiops.care.models import AlertDisposition
from clinaiops.care.services import MAX_ACK_NOTE


class AlertAcknowledgeForm(forms.Form):
    disposition = forms.ChoiceField(widget=forms.RadioSelect, label="What was done")
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_ACK_NOTE,
        label="Note",
        help_text="What you did and why. Kept encrypted; visible to the care team on this page.",
    )

    def __init__(self, *args: object, dispositions: tuple[AlertDisposition, ...], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["disposition"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(str(choice), choice.label) for choice in dispositions]


ACTION_CHOICES = [("increase", "Increase"), ("decrease", "Decrease"), ("maintain", "Maintain")]


class WorklistFilterForm(forms.Form):
    """The worklist's filters, from the query string. A value that is not one of the choices is a field error
    and the filter is not applied."""

    clinic = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Clinic")
    reason = forms.ChoiceField(required=False, label="Reason")
    action = forms.ChoiceField(required=False, label="Action", choices=[("", "any"), *ACTION_CHOICES])
    overdue = forms.BooleanField(required=False, label="Overdue only")

    def __init__(
        self, *args: object, clinics: list[tuple[int, str]], reasons: list[tuple[str, str]], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        clinic = self.fields["clinic"]
        reason = self.fields["reason"]
        assert isinstance(clinic, forms.ChoiceField)
        assert isinstance(reason, forms.ChoiceField)
        clinic.choices = [("", "any"), *clinics]
        reason.choices = [("", "any"), *reasons]
