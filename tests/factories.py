"""Factories for the personas every test uses (STYLE.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import factory
from django.contrib.auth.hashers import make_password

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import Role, User

PASSWORD = "correct horse battery staple"
_HASHED = make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.CLINICIAN
    printed_name = factory.LazyAttribute(lambda u: f"{u.username.title()} Example")
    password = _HASHED


class CareTeamFactory(factory.django.DjangoModelFactory[CareTeam]):
    class Meta:
        model = CareTeam

    name = factory.Sequence(lambda n: f"Care team {n}")


class PatientFactory(factory.django.DjangoModelFactory[Patient]):
    class Meta:
        model = Patient

    user = factory.SubFactory(UserFactory, role=Role.PATIENT)
    code = factory.Sequence(lambda n: f"P-T{n:04d}")
    care_team = factory.SubFactory(CareTeamFactory)
    sex = "female"
    birth_year = 1962
    race_ethnicity = "white"
    skin_tone = 3
    current_step = 2
    target_sbp = 130
    target_dbp = 80
    enrolled_at = datetime(2026, 1, 1, tzinfo=UTC)

    @classmethod
    def _create(cls, model_class: type[Patient], *args: Any, **kwargs: Any) -> Patient:
        return super()._create(model_class, *args, **kwargs)
