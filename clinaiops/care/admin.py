"""Read-only admin for clinical records; its actions and add forms call the audited care services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from clinaiops.care.escalation_chain import escalation_chain_set
from clinaiops.care.models import Alert, CareTeam, Patient
from clinaiops.care.services import (
    PatientIdentifiers,
    care_team_create,
    care_team_member_add,
    care_team_member_remove,
    patient_enroll,
    patient_team_assign,
)
from clinaiops.care.validation import target_problems
from clinaiops.core.admin import ReadOnlyModelAdmin, service_action
from clinaiops.core.models import Role, User


class ClinicianForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.filter(role=Role.CLINICIAN).order_by("username"))


class CareTeamChoiceForm(forms.Form):
    care_team = forms.ModelChoiceField(queryset=CareTeam.objects.order_by("name"))


class EscalationChainForm(forms.Form):
    """A care team's escalation chain (issue 11): usernames in order; empty means the team's clinicians in the
    order they joined. The lead comes last whatever the order."""

    members = forms.CharField(
        required=False, help_text="Usernames in escalation order, separated by commas (empty: joining order)."
    )
    lead = forms.ModelChoiceField(
        queryset=User.objects.filter(role=Role.CLINICIAN).order_by("username"), required=False, label="Team lead"
    )

    def clean_members(self) -> list[User]:
        names = [name.strip() for name in (self.cleaned_data.get("members") or "").split(",") if name.strip()]
        users = {user.username: user for user in User.objects.filter(username__in=names)}
        unknown = [name for name in names if name not in users]
        if unknown:
            raise forms.ValidationError(f"{len(unknown)} of the usernames are not accounts.")
        return [users[name] for name in names]


def _chain_set(actor: User, team: CareTeam, data: dict[str, Any]) -> bool:
    escalation_chain_set(actor=actor, team=team, members=data["members"], lead=data["lead"])
    return True


def _member_add(actor: User, team: CareTeam, data: dict[str, Any]) -> bool:
    return care_team_member_add(actor=actor, team=team, user=data["user"])


def _member_remove(actor: User, team: CareTeam, data: dict[str, Any]) -> bool:
    return care_team_member_remove(actor=actor, team=team, user=data["user"])


def _team_assign(actor: User, patient: Patient, data: dict[str, Any]) -> bool:
    return patient_team_assign(actor=actor, patient=patient, team=data["care_team"])


class _CreatedThroughService:
    """An add form whose save calls a service instead of `obj.save()`; the change view stays read-only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return True

    def _adopt(self, obj: Any, created: Any) -> None:
        # The admin's own bookkeeping (its log entry, the redirect) needs the stored row's id.
        obj.pk = created.pk
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Related rows (team members) are never saved by a form: only the membership actions add them."""


@admin.register(CareTeam)
class CareTeamAdmin(_CreatedThroughService, ReadOnlyModelAdmin):
    list_display = ("name",)
    actions = [
        service_action(
            name="member_add", description="Add a clinician to the care team", form_class=ClinicianForm,
            apply=_member_add,
        ),
        service_action(
            name="member_remove", description="Remove a clinician from the care team", form_class=ClinicianForm,
            apply=_member_remove,
        ),
        service_action(
            name="escalation_chain_set", description="Set the escalation chain and team lead",
            form_class=EscalationChainForm, apply=_chain_set,
        ),
    ]  # fmt: skip

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name",) if obj is None else ("name", "members", "lead")

    def save_model(self, request: HttpRequest, obj: CareTeam, form: Any, change: bool) -> None:
        assert isinstance(request.user, User)
        assert not change, "the change view is read-only"
        self._adopt(obj, care_team_create(actor=request.user, name=obj.name))


IDENTIFIER_FIELDS = ("given_name", "family_name", "date_of_birth", "mrn")


class PatientEnrolForm(ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Patient
        # The birth year is taken from the date of birth by the service.
        fields = [
            "user", "code", "care_team", *IDENTIFIER_FIELDS, "sex", "race_ethnicity", "skin_tone", "diabetes",
            "ckd", "current_step", "target_sbp", "target_dbp",
        ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("family_name", "date_of_birth", "mrn"):
            self.fields[name].required = True

    def clean_user(self) -> User:
        user: User = self.cleaned_data["user"]
        if user.role != Role.PATIENT:
            raise forms.ValidationError("Only a patient account can be enrolled; give the account its role first.")
        return user

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "target_sbp" in data and "target_dbp" in data:
            for name, problems in target_problems(target_sbp=data["target_sbp"], target_dbp=data["target_dbp"]).items():
                for problem in problems:
                    self.add_error(name, problem)
        return data


@admin.register(Patient)
class PatientAdmin(_CreatedThroughService, ReadOnlyModelAdmin):
    list_display = ("code", "care_team", "current_step", "autonomy_paused")
    list_filter = ("care_team",)
    search_fields = ("code",)
    actions = [
        service_action(
            name="team_assign", description="Assign to another care team", form_class=CareTeamChoiceForm,
            apply=_team_assign,
        )
    ]  # fmt: skip

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = PatientEnrolForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return PatientEnrolForm.Meta.fields
        # Identifiers are read on the portal's audited patient pages, not in the admin's unaudited change view.
        return [name for name in super().get_fields(request, obj) if name not in IDENTIFIER_FIELDS]

    def save_model(self, request: HttpRequest, obj: Patient, form: Any, change: bool) -> None:
        assert isinstance(request.user, User)
        assert not change, "the change view is read-only"
        data = form.cleaned_data
        identifiers = PatientIdentifiers(**{name: data[name] for name in IDENTIFIER_FIELDS})
        others = {name: data[name] for name in PatientEnrolForm.Meta.fields if name not in IDENTIFIER_FIELDS}
        self._adopt(obj, patient_enroll(actor=request.user, identifiers=identifiers, **others))


@admin.register(Alert)
class AlertAdmin(ReadOnlyModelAdmin):
    """Alerts are acknowledged in the portal by the people responsible for them, never here."""

    list_display = ("patient", "kind", "priority", "status", "owner", "escalation_step", "opened_at")
    list_filter = ("kind", "priority", "status")
    # The acknowledgement note is clinician free text: it is read on the portal's audited alert page only.
    exclude = ("acknowledgement_note",)
