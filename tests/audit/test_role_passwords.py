"""`db_roles` sends role passwords as SCRAM-SHA-256 verifiers, so the plain text never reaches the server (and
its statement log). The verifier must be the one PostgreSQL itself would store."""

from __future__ import annotations

import base64
import hashlib
import hmac

from clinaiops.audit.roles import scram_sha256_verifier


def test_passwords_are_sent_as_scram_verifiers_that_match_rfc_7677() -> None:
    # RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_sha256_verifier("pencil", salt=salt, iterations=4096)
    scheme, rest = verifier.split("$", 1)
    _, keys = rest.split("$")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    client_signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    client_proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_key = bytes(a ^ b for a, b in zip(client_proof, client_signature, strict=True))
    assert scheme == "SCRAM-SHA-256"
    assert base64.b64encode(server_signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert hashlib.sha256(client_key).digest() == stored_key
