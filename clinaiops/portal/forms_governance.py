"""Forms of the governance actions in the portal (issue 11): model sign-off, promotion, rollback, the comparison
picker and approval-policy changes. They check shapes only; the services decide what is allowed and say why."""

from __future__ import annotations

from django import forms

from clinaiops.portal.forms import PolicyForm
from inference.labels import arm_label
from inference.models import Arm

PASSWORD_WIDGET = forms.PasswordInput(attrs={"autocomplete": "current-password"})
ARM_CHOICES = [(str(arm), arm_label(str(arm)).capitalize()) for arm in Arm.values]


class SignoffForm(forms.Form):
    """An e-signed sign-off (governance.signoffs.model_signoff_create); meaning "signed off"."""

    acknowledge_full_review = forms.BooleanField(
        required=False,
        label="I have reviewed each finding above and acknowledge it (clinical safety officer)",
    )
    password = forms.CharField(widget=PASSWORD_WIDGET, help_text="Re-enter your password to sign.")


class PromoteForm(forms.Form):
    arm = forms.ChoiceField(choices=ARM_CHOICES, label="Arm")


class RollbackForm(forms.Form):
    arm = forms.ChoiceField(choices=ARM_CHOICES, label="Arm")
    reason = forms.CharField(max_length=200, label="Why", widget=forms.TextInput(attrs={"size": 40}))


class CompareForm(forms.Form):
    """The two versions to compare, by id (the picker lists them by hash)."""

    a = forms.TypedChoiceField(coerce=int, label="Version A")
    b = forms.TypedChoiceField(coerce=int, label="Version B")

    def __init__(self, *args: object, choices: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # forms.Form's own untyped signature
        for name in ("a", "b"):
            field = self.fields[name]
            assert isinstance(field, forms.TypedChoiceField)
            field.choices = choices


class PolicyChangeForm(PolicyForm):
    """A new approval-policy version: the settings, why, and whether later changes need a second signer."""

    requires_second_signer = forms.BooleanField(
        required=False,
        label="Later changes need a second signer",
        help_text="When set, a change stays pending until a different clinical safety officer countersigns it.",
    )
    reason = forms.CharField(
        max_length=1000,
        label="Reason for the change",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the version (encrypted); the ledger holds a keyed digest.",
    )
    field_order = [*PolicyForm.base_fields, "requires_second_signer", "reason", "password"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # forms.Form's own untyped signature
        # A preview does not sign, so the password is asked only when signing (checked by the view).
        self.fields["password"].required = False


class PolicyCountersignForm(forms.Form):
    password = forms.CharField(widget=PASSWORD_WIDGET, help_text="Re-enter your password to countersign.")


class PolicyWithdrawForm(forms.Form):
    reason = forms.CharField(max_length=1000, label="Why it is withdrawn", widget=forms.TextInput(attrs={"size": 40}))
    password = forms.CharField(widget=PASSWORD_WIDGET, help_text="Re-enter your password to sign the withdrawal.")
