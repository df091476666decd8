"""Factories for the personas every test uses (STYLE.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import factory
from django.contrib.auth.hashers import make_password

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import Role, User
from fixtures.cohort import FAMILY_NAMES, GIVEN_NAMES_FEMALE

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
    # Direct identifiers, encrypted at rest (the blind indexes are derived on save).
    given_name = factory.Sequence(lambda n: GIVEN_NAMES_FEMALE[n % len(GIVEN_NAMES_FEMALE)])
    family_name = factory.Sequence(lambda n: FAMILY_NAMES[n % len(FAMILY_NAMES)])
    mrn = factory.Sequence(lambda n: f"T{n:07d}")
    date_of_birth = factory.LazyAttribute(lambda p: date(p.birth_year, 3, 14))
    sex = "female"
    birth_year = 1962
    race_ethnicity = "white"
    skin_tone = 3
    current_step = 2
    target_sbp = 130
    target_dbp = 80
    enrolled_at = datetime(2026, 1, 1, tzinfo=UTC)


class DeviceGatewayFactory(UserFactory):
    """A hospital's device gateway (a FHIR service account); put it on care teams with `care_teams=[team]`."""

    class Meta:
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"gateway-{n:04d}")
    role = Role.DEVICE_GATEWAY
    printed_name = "Ward device gateway"

    @factory.post_generation
    def care_teams(self, create: bool, teams: list[CareTeam] | None, **kwargs: object) -> None:
        for team in teams or []:
            team.members.add(self)
