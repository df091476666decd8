"""Issue 8 §4, ASVS V2: the password policy, the hasher, and the demo's accounts each with a hash of their own."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.test import Client

from clinaiops.core.models import User
from fixtures.demo import DemoConfig, demo_users_create
from tests.factories import PASSWORD

BASE_HASHERS = [
    "clinaiops.core.auth.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


@pytest.mark.parametrize(
    ("new_password", "message"),
    [
        ("Short-pw-1!", "This password is too short. It must contain at least 12 characters."),
        ("password1234", "This password is too common."),
        ("834610297315", "This password is entirely numeric."),
        ("dr_assigned_2026", "The password is too similar to the username."),
    ],
)
def test_a_password_change_refuses_short_common_numeric_and_personal_passwords(
    clinician: User, portal_client_for: Any, new_password: str, message: str
) -> None:
    response = portal_client_for(clinician).post(
        "/account/password/", {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password}
    )
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    clinician.refresh_from_db()
    assert clinician.check_password(PASSWORD)


def test_a_long_passphrase_is_accepted_and_the_other_sessions_end(clinician: User, portal_client_for: Any) -> None:
    here, elsewhere = portal_client_for(clinician), portal_client_for(clinician)
    new = "four random words suffice here"
    response = here.post("/account/password/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert response.status_code == 302
    assert here.get("/queue/").status_code == 200  # this session stays signed in
    assert elsewhere.get("/queue/").status_code == 302  # the other one is signed out
    assert Client().post("/login/", {"username": clinician.username, "password": new}).status_code == 302


def test_new_hashes_are_argon2id_with_the_documented_costs(settings: Any) -> None:
    settings.PASSWORD_HASHERS = BASE_HASHERS
    encoded = make_password("demo-password")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password("demo-password", encoded) and not check_password("demo-passwore", encoded)
    settings.PASSWORD_ARGON2_MEMORY_KIB = 65536
    assert identify_hasher(encoded).must_update(encoded)  # raising the cost upgrades the hash at next sign-in


def test_an_old_pbkdf2_hash_still_signs_in_and_is_upgraded_to_argon2id(clinician: User, settings: Any) -> None:
    settings.PASSWORD_HASHERS = BASE_HASHERS
    User.objects.filter(pk=clinician.pk).update(
        password=make_password(PASSWORD, hasher="pbkdf2_sha256"), token_generation=0
    )
    assert Client().post("/login/", {"username": clinician.username, "password": PASSWORD}).status_code == 302
    clinician.refresh_from_db()
    assert clinician.password.startswith("argon2$argon2id$")
    assert clinician.token_generation == 0  # a rehash is not a password change: no token is revoked


def test_demo_accounts_each_get_their_own_salt_and_hash(db: None, settings: Any) -> None:
    settings.PASSWORD_HASHERS = BASE_HASHERS
    users = demo_users_create(DemoConfig(patients=4, password="demo-password"))
    hashes = [user.password for user in users.values()]
    assert len(hashes) == 9 and len(set(hashes)) == 9
    salts = {encoded.split("$")[-2] for encoded in hashes}
    assert len(salts) == 9
    assert all(encoded.startswith("argon2$argon2id$") for encoded in hashes)
    assert all(check_password("demo-password", encoded) for encoded in hashes)
