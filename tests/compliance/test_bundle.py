"""The signed evidence bundle and its standalone verifier: intact bundles pass; any change fails naming the file; a
bundle re-signed with another key passes only without --trusted-key; bad input never ends in a traceback; and the
verifier runs in a bare Python that has `cryptography` and nothing else."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.db import transaction
from django.test import TestCase, override_settings

from clinaiops.audit.synthetic import synthetic_ledger_create
from clinaiops.core.models import Role, User
from compliance import verify_bundle
from compliance.services import export_file_path, export_request
from tests.factories import UserFactory

VERIFIER = Path(verify_bundle.__file__)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _verify(path: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = verify_bundle.main([str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def bundle_bytes(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One evidence bundle for the module: every test here reads the zip (or a changed copy of it) and none looks
    at the database, so the 1,200-event ledger and the export job are built once, in a transaction rolled back
    afterwards, with an artifact store of its own (the witness file and the export live there)."""
    with (
        django_db_blocker.unblock(),
        override_settings(ARTIFACT_ROOT=tmp_path_factory.mktemp("bundle-artifacts")),
        transaction.atomic(),
    ):
        compliance_officer = UserFactory(username="compliance", role=Role.COMPLIANCE_OFFICER)
        synthetic_ledger_create(1200, checkpoint_every=500, witness=True)
        with TestCase.captureOnCommitCallbacks(execute=True):  # as the eager worker does after the commit
            export = export_request(
                actor=compliance_officer,
                kind="evidence_bundle",
                parameters={"from": "2026-01-01T00:00:20Z", "to": "2026-01-01T00:00:30Z"},
                formats=["zip"],
            )
        export.refresh_from_db()
        assert export.status == "finished", export.error_message
        data = export_file_path(export.files.get()).read_bytes()
        transaction.set_rollback(True)
    return data


@pytest.fixture
def bundle(db: None, bundle_bytes: bytes, tmp_path: Path) -> Path:
    """This test's own copy of the module's bundle (`db`: so pytest-django sets up the database it is built in)."""
    target = tmp_path / "bundle.zip"
    target.write_bytes(bundle_bytes)
    return target


def _resign(members: dict[str, bytes], key: Ed25519PrivateKey) -> dict[str, bytes]:
    """What someone who rebuilt the bundle would do: recompute the manifest and sign it with their own key."""
    manifest = json.loads(members["manifest.json"])
    for item in manifest["files"]:
        item["sha256"] = hashlib.sha256(members[item["path"]]).hexdigest()
        item["size"] = len(members[item["path"]])
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    manifest["signing"].update(
        public_key=base64.b64encode(raw).decode(), key_id="forger", fingerprint_sha256=hashlib.sha256(raw).hexdigest()
    )
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return {
        **members,
        "manifest.json": manifest_bytes,
        "manifest.sig": base64.b64encode(key.sign(manifest_bytes)) + b"\n",
        "signing-key.json": json.dumps(
            {"algorithm": "Ed25519", "key_id": "forger", "public_key": manifest["signing"]["public_key"]}
        ).encode(),
    }


def test_an_intact_bundle_verifies_with_its_chain_and_the_trusted_key(
    bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    members = _members(bundle)
    assert {
        "manifest.json",
        "manifest.sig",
        "signing-key.json",
        "reports/audit-range.json",
        "reports/audit-range.pdf",
        "data/audit-events.csv",
        "data/audit-events.jsonl",
        "ledger/checkpoints.jsonl",
        "ledger/checkpoint-keys.json",
        "ledger/witness.jsonl",
        "README.txt",
    } == set(members)
    manifest = json.loads(members["manifest.json"])
    report = json.loads(members["reports/audit-range.json"])
    assert report["listing"] == {"csv": "data/audit-events.csv", "jsonl": "data/audit-events.jsonl"}
    assert (manifest["range"]["first_seq"], manifest["range"]["last_seq"]) == (541, 810)
    assert (manifest["chain"]["first_seq"], manifest["chain"]["last_seq"]) == (501, 1000)
    assert [json.loads(line)["seq"] for line in members["ledger/checkpoints.jsonl"].splitlines()] == [500, 1000]
    key_file = tmp_path / "trusted.json"
    key_file.write_bytes(members["signing-key.json"])
    code, out, err = _verify(bundle, "--trusted-key", str(key_file), capsys=capsys)
    assert (code, err) == (0, "")
    assert "8 files match the signed manifest" in out
    assert "= the trusted key" in out
    assert "audit chain seq 501–1000 recomputed and linked between signed checkpoints" in out
    public = json.loads(members["signing-key.json"])["public_key"]
    assert _verify(bundle, "--trusted-key", public, capsys=capsys)[0] == 0


def test_a_changed_byte_in_any_member_fails_naming_that_member(
    bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rng = random.Random(9)  # a seeded loop: the same flips on every run
    original = _members(bundle)
    for name, data in original.items():
        assert data, f"{name} is empty"
        for _ in range(3):
            position = rng.randrange(len(data))
            flipped = bytearray(data)
            flipped[position] ^= 1 << rng.randrange(8)
            target = _write(tmp_path / "flipped.zip", {**original, name: bytes(flipped)})
            code, out, err = _verify(target, capsys=capsys)
            assert code == 1, (name, position, out)
            assert name in err, (name, position, err)
            assert "Traceback" not in err


def test_raw_byte_flips_anywhere_in_the_zip_never_pass_unnoticed_and_never_crash(
    bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rng = random.Random(4)
    raw = bundle.read_bytes()
    original = _members(bundle)
    for _ in range(60):
        position = rng.randrange(len(raw))
        flipped = bytearray(raw)
        flipped[position] ^= 1 << rng.randrange(8)
        target = tmp_path / "raw.zip"
        target.write_bytes(bytes(flipped))
        code, _out, err = _verify(target, capsys=capsys)
        assert "Traceback" not in err
        if code == 0:
            # Only zip bookkeeping the manifest cannot cover changed (a timestamp, an unused header byte): every
            # member's name and content is exactly as signed.
            assert _members(target) == original, position
        else:
            assert code in {1, 2}, position


@pytest.mark.parametrize("change", ["added", "removed", "renamed"])
def test_a_file_added_removed_or_renamed_fails_naming_it(
    change: str, bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    members = _members(bundle)
    if change == "added":
        members["data/extra.csv"] = b"seq\n1\n"
        named = "data/extra.csv"
    elif change == "removed":
        del members["data/audit-events.csv"]
        named = "data/audit-events.csv"
    else:
        members["data/events.csv"] = members.pop("data/audit-events.csv")
        named = "data/audit-events.csv"
    code, _out, err = _verify(_write(tmp_path / "changed.zip", members), capsys=capsys)
    assert code == 1
    assert named in err


def test_a_swapped_signature_or_key_fails(bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    members = _members(bundle)
    other = _resign(members, Ed25519PrivateKey.generate())
    swapped_signature = _write(tmp_path / "sig.zip", {**members, "manifest.sig": other["manifest.sig"]})
    code, _out, err = _verify(swapped_signature, capsys=capsys)
    assert code == 1
    assert "manifest.sig" in err
    swapped_key = _write(tmp_path / "key.zip", {**members, "signing-key.json": other["signing-key.json"]})
    code, _out, err = _verify(swapped_key, capsys=capsys)
    assert code == 1
    assert "signing-key.json" in err


def test_a_bundle_re_signed_with_another_key_is_refused_given_the_trusted_key(
    bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    members = _members(bundle)
    genuine = json.loads(members["signing-key.json"])["public_key"]
    forged = _resign({**members, "README.txt": b"nothing to see\n"}, Ed25519PrivateKey.generate())
    target = _write(tmp_path / "forged.zip", forged)
    code, out, _err = _verify(target, capsys=capsys)
    assert code == 0  # consistent in itself: only the trusted key tells the forger apart
    assert "compare it with the key you trust" in out
    code, _out, err = _verify(target, "--trusted-key", genuine, capsys=capsys)
    assert code == 1
    assert "signed with a key other than the trusted key" in err


def test_an_insider_with_the_bundle_key_still_cannot_edit_an_audit_event(
    bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Re-signing the manifest after editing the events is caught by the ledger's own checkpoint signatures."""
    members = _members(bundle)
    lines = members["data/audit-events.jsonl"].decode().splitlines()
    event = json.loads(lines[100])
    event["object_id"] = "999999"
    import clinaiops.audit.chain as chain

    event["hash"] = chain.event_hash(
        event["seq"],
        event["recorded_at"],
        event["actor_id"],
        event["actor_role"],
        event["action"],
        event["object_type"],
        event["object_id"],
        event["outcome"],
        event["request_id"],
        event["ip"],
        event["payload"],
        event["prev_hash"],
    )
    lines[100] = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    edited = {**members, "data/audit-events.jsonl": ("\n".join(lines) + "\n").encode()}
    code, _out, err = _verify(
        _write(tmp_path / "insider.zip", _resign(edited, Ed25519PrivateKey.generate())), capsys=capsys
    )
    assert code == 1
    assert "data/audit-events.jsonl" in err
    assert f"seq {event['seq'] + 1} does not link" in err


@pytest.mark.parametrize("case", ["missing", "empty", "not a zip", "directory", "bad key"])
def test_unusable_input_is_refused_with_a_sentence_not_a_traceback(
    case: str, bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "input"
    extra: list[str] = []
    if case == "empty":
        target.write_bytes(b"")
    elif case == "not a zip":
        target.write_bytes(b"%PDF-1.7 not a bundle")
    elif case == "directory":
        target.mkdir()
    elif case == "bad key":
        target, extra = bundle, ["--trusted-key", "not-base64!"]
    code, _out, err = _verify(target, *extra, capsys=capsys)
    assert code == 2
    assert err.startswith("CANNOT VERIFY:")
    assert "Traceback" not in err


# --- The verifier in a bare Python -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway virtual environment without the system's or the project's site-packages, holding only
    `cryptography` and what it needs (cffi, pycparser), linked from this interpreter's installation: no network, and
    provably no Django."""
    import cffi
    import cryptography
    import pycparser

    root = tmp_path_factory.mktemp("bare-python")
    venv.EnvBuilder(system_site_packages=False, with_pip=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for package in (cryptography, cffi, pycparser):
        source = Path(package.__file__).parent
        (site / source.name).symlink_to(source)
    for backend in Path(cffi.__file__).parent.parent.glob("_cffi_backend*.so"):
        (site / backend.name).symlink_to(backend)
    probe = subprocess.run([str(python), "-c", "import django"], capture_output=True, text=True, cwd=root, check=False)
    assert probe.returncode != 0, "the bare Python must not see Django"
    return python


def _bare_run(python: Path, bundle: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    alone = tmp_path / "auditor"
    alone.mkdir(exist_ok=True)
    copy = alone / "verify_bundle.py"
    shutil.copy(VERIFIER, copy)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONNOUSERSITE": "1"}
    return subprocess.run(
        [str(python), "-I", str(copy), str(bundle), *extra],
        capture_output=True,
        text=True,
        cwd=alone,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_verifier_runs_alone_in_a_bare_python_with_only_cryptography(
    bare_python: Path, bundle: Path, tmp_path: Path
) -> None:
    members = _members(bundle)
    result = _bare_run(
        bare_python, bundle, tmp_path, "--trusted-key", json.loads(members["signing-key.json"])["public_key"]
    )
    assert result.returncode == 0, result.stderr
    assert "audit chain seq 501–1000 recomputed and linked" in result.stdout
    csv = bytearray(members["data/audit-events.csv"])
    csv[500] ^= 0x20
    changed = _bare_run(
        bare_python, _write(tmp_path / "changed.zip", {**members, "data/audit-events.csv": bytes(csv)}), tmp_path
    )
    assert changed.returncode == 1
    assert "data/audit-events.csv" in changed.stderr
    assert "Traceback" not in changed.stderr
    missing = _bare_run(bare_python, tmp_path / "nowhere.zip", tmp_path)
    assert (missing.returncode, "Traceback" in missing.stderr) == (2, False)
    help_text = subprocess.run(
        [str(bare_python), "-I", str(tmp_path / "auditor" / "verify_bundle.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert help_text.returncode == 0
    assert "--trusted-key" in help_text.stdout


def test_the_verifier_imports_nothing_but_the_standard_library_and_cryptography() -> None:
    import ast

    tree = ast.parse(VERIFIER.read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


def test_the_demo_writes_its_evidence_bundle_where_it_says_and_it_verifies(
    db: None, compliance_officer: User, tmp_path: Path, settings: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from clinaiops.audit.models import AuditAction, AuditEvent
    from fixtures.demo_compliance import demo_evidence_bundle_write

    settings.VAR_DIR = tmp_path  # type: ignore[attr-defined]
    synthetic_ledger_create(300, checkpoint_every=100, witness=True)
    written = demo_evidence_bundle_write(actor_username=compliance_officer.username)
    assert written.path == tmp_path / "demo-evidence" / "evidence-bundle.zip"
    assert written.events >= 300
    code, out, err = _verify(written.path, "--trusted-key", str(written.key_file), capsys=capsys)
    assert (code, err) == (0, "")
    assert "= the trusted key" in out
    created = AuditEvent.objects.get(action=AuditAction.EXPORT_CREATED, object_type="export")
    assert (created.actor_id, created.payload_data["kind"], created.payload_data["purpose"]) == (
        compliance_officer.pk,
        "evidence_bundle",
        "audit",
    )
