#!/usr/bin/env python3
"""Verify a ClinAIOps evidence bundle. Standalone: Python 3.11+ and the `cryptography` package, nothing else.

    python verify_bundle.py BUNDLE.zip [--trusted-key PUBKEY]

PUBKEY is the bundle signing key's public half: a file holding its base64 (32 raw bytes), a signing-key.json, or
the base64 itself. Copy this one file anywhere; it imports no Django and nothing of the project.

Exit status: 0 the bundle is intact; 1 it was changed (the message names the file); 2 it cannot be checked (no
such file, not a zip, a bad argument). It never ends with a traceback.

Checked, in this order: the zip is readable and every member's CRC is intact; no member name appears twice; the
members are exactly manifest.json, manifest.sig, signing-key.json and the files the manifest lists (nothing added,
removed or renamed); signing-key.json matches the key in the manifest and, with --trusted-key, the trusted key; the
Ed25519 signature over manifest.json; every file's size and SHA-256; then the audit chain: every event in the
listed events file recomputed and linked from the anchor checkpoint to the covering one, the checkpoints' Ed25519
signatures under the ledger keys the bundle carries, and the witness entries against the checkpoints.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
import zipfile
from collections.abc import Iterator
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

FIXED_MEMBERS = ("manifest.json", "manifest.sig", "signing-key.json")
MANIFEST_SCHEMA = "clinaiops.evidence_bundle_manifest"
GENESIS_HASH = "0" * 64
# The canonical form of an audit event (docs/canonical-encoding.md): its twelve chained fields as canonical JSON,
# keys sorted. The same format string as clinaiops/audit/chain.py, kept here so this file stands alone.
_EVENT_FORMAT = (
    '{"action":%s,"actor_id":%s,"actor_role":%s,"ip":%s,"object_id":%s,"object_type":%s,"outcome":%s,'
    '"payload":%s,"prev_hash":%s,"recorded_at":%s,"request_id":%s,"seq":%d}'
)


class Changed(Exception):
    """The bundle was changed: exit 1, naming the file."""

    def __init__(self, member: str, problem: str) -> None:
        super().__init__(f"{member}: {problem}")
        self.member = member


class Unusable(Exception):
    """The bundle cannot be checked at all: exit 2."""


def _crypto() -> Any:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as exc:
        raise Unusable("the `cryptography` package is needed: pip install cryptography") from exc
    return InvalidSignature, Ed25519PublicKey


def _b64(value: object, what: str, member: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise Changed(member, f"{what} is not base64 text")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Changed(member, f"{what} is not valid base64") from exc
    if length is not None and len(raw) != length:
        raise Changed(member, f"{what} is not {length} bytes")
    return raw


def _ed25519_verify(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    invalid_signature, public_key_class = _crypto()
    try:
        public_key_class.from_public_bytes(public_raw).verify(signature, message)
    except (invalid_signature, ValueError):
        return False
    return True


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except Exception as exc:  # a bad CRC, a damaged deflate stream (zlib.error), a broken header: it was changed
        raise Changed(name, f"cannot be read intact ({type(exc).__name__})") from exc


def _digest(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(name) as handle:
            while block := handle.read(1024 * 1024):
                digest.update(block)
                size += len(block)
    except Exception as exc:  # a CRC or deflate error inside a member: it was changed
        raise Changed(name, f"cannot be read intact ({type(exc).__name__})") from exc
    return digest.hexdigest(), size


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Changed(name, "is not valid JSON") from exc


def _trusted_key(value: str) -> bytes:
    """A trusted public key given as a file (base64 text or a signing-key.json) or as base64 on the command line."""
    text = value
    path = Path(value)
    try:
        if path.is_file():
            text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise Unusable(f"cannot read the trusted key {value}: {exc.strerror}") from exc
    if text.startswith("{"):
        try:
            text = str(json.loads(text)["public_key"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Unusable("the trusted key file has no public_key") from exc
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unusable("the trusted key is neither a key file nor base64") from exc
    if len(raw) != 32:
        raise Unusable("the trusted key is not an Ed25519 public key (32 bytes)")
    return raw


def _event_canonical(event: dict[str, Any], line: int, member: str) -> bytes:
    e = encode_basestring
    try:
        actor_id = event["actor_id"]
        ip = event["ip"]
        if actor_id is not None and type(actor_id) is not int:
            raise TypeError("actor_id")
        if type(event["seq"]) is not int:
            raise TypeError("seq")
        text = _EVENT_FORMAT % (
            e(event["action"]), "null" if actor_id is None else "%d" % actor_id, e(event["actor_role"]),  # noqa: UP031
            "null" if ip is None else e(ip), e(event["object_id"]), e(event["object_type"]), e(event["outcome"]),
            event["payload"], e(event["prev_hash"]), e(event["recorded_at"]), e(event["request_id"]), event["seq"],
        )  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise Changed(member, f"line {line} is not an audit event ({exc})") from exc
    if not isinstance(event["payload"], str) or not isinstance(event["hash"], str):
        raise Changed(member, f"line {line} is not an audit event")
    return text.encode("utf-8")


def _checkpoint_message(c: dict[str, Any]) -> bytes:
    """What a checkpoint's signature covers: its signed fields as canonical JSON (segment fields only when set)."""
    fields = {k: c[k] for k in ("created_at", "event_count", "head_hash", "key_id", "seq")}
    if c.get("segment_start") is not None:
        fields["segment_hashes"] = c.get("segment_hashes", "")
        fields["segment_start"] = c["segment_start"]
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _lines(archive: zipfile.ZipFile, member: str) -> Iterator[tuple[int, Any]]:
    """The JSON lines of a member, streamed (a million-event listing is never held in memory)."""
    try:
        with archive.open(member) as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, _json(line, f"{member} line {number}")
    except Changed:
        raise
    except Exception as exc:  # CRC or deflate error found while streaming
        raise Changed(member, f"cannot be read intact ({type(exc).__name__})") from exc


def _chain_check(archive: zipfile.ZipFile, chain: dict[str, Any], listed: set[str]) -> str:
    """Recompute the audit chain the bundle carries; returns a one-line summary."""
    names: dict[str, str] = {}
    for what in ("events", "checkpoints", "checkpoint_keys", "witness"):
        name = chain.get(what)
        if not isinstance(name, str) or name not in listed:
            raise Changed("manifest.json", f"the chain's {what} file is not one of the listed files")
        names[what] = name
    keys_doc = _json(_read(archive, names["checkpoint_keys"]), names["checkpoint_keys"])
    keys = {
        str(key_id): _b64(value, f"ledger key {key_id}", names["checkpoint_keys"], 32)
        for key_id, value in (keys_doc.get("keys") or {}).items()
    }
    checkpoints: dict[int, dict[str, Any]] = {}
    member = names["checkpoints"]
    for line, checkpoint in _lines(archive, member):
        try:
            key = keys.get(str(checkpoint["key_id"]))
            signature = _b64(checkpoint["signature"], "a checkpoint signature", member, 64)
            valid = key is not None and _ed25519_verify(key, signature, _checkpoint_message(checkpoint))
        except (KeyError, TypeError) as exc:
            raise Changed(member, f"line {line} is not a checkpoint") from exc
        if not valid:
            raise Changed(member, f"the checkpoint at seq {checkpoint.get('seq')} has an invalid signature")
        checkpoints[int(checkpoint["seq"])] = checkpoint
    anchor, cover = chain.get("anchor") or {}, chain.get("cover") or {}
    try:
        anchor_seq, cover_seq = int(anchor["seq"]), int(cover["seq"])
        expected_prev = GENESIS_HASH if anchor_seq == 0 else str(checkpoints[anchor_seq]["head_hash"])
        cover_hash = str(checkpoints[cover_seq]["head_hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Changed(member, "the anchor or covering checkpoint is missing") from exc
    if (anchor_seq and anchor.get("head_hash") != expected_prev) or cover.get("head_hash") != cover_hash:
        raise Changed("manifest.json", "the chain's anchor or cover does not match the signed checkpoints")
    expected = anchor_seq + 1
    member = names["events"]
    sha256 = hashlib.sha256
    for line, event in _lines(archive, member):
        if not isinstance(event, dict) or event.get("seq") != expected:
            found = event.get("seq") if isinstance(event, dict) else "?"
            raise Changed(member, f"line {line}: expected seq {expected}, found {found}")
        if event.get("prev_hash") != expected_prev:
            raise Changed(member, f"seq {expected} does not link to seq {expected - 1}")
        digest = sha256(_event_canonical(event, line, member)).hexdigest()
        if digest != event.get("hash"):
            raise Changed(member, f"seq {expected}: the event does not match its hash")
        checkpoint = checkpoints.get(expected)
        if checkpoint is not None and checkpoint.get("head_hash") != digest:
            raise Changed(member, f"seq {expected} does not match the signed checkpoint over it")
        expected_prev = digest
        expected += 1
    if expected - 1 != cover_seq:
        raise Changed(member, f"the events end at seq {expected - 1}, not at the covering checkpoint's seq {cover_seq}")
    member = names["witness"]
    witnessed = 0
    for line, entry in _lines(archive, member):
        try:
            seq = int(entry["seq"])
            key = keys.get(str(entry["key_id"]))
            signature = _b64(entry["signature"], "a witness signature", member, 64)
            valid = key is not None and _ed25519_verify(key, signature, _checkpoint_message(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise Changed(member, f"line {line} is not a witness entry") from exc
        if not valid:
            raise Changed(member, f"the witness entry for seq {seq} has an invalid signature")
        if seq in checkpoints and checkpoints[seq].get("head_hash") != entry.get("head_hash"):
            raise Changed(member, f"the witness disagrees with the checkpoint at seq {seq}")
        witnessed += 1
    entries = "entry" if witnessed == 1 else "entries"
    return (
        f"audit chain seq {anchor_seq + 1}–{cover_seq} recomputed and linked between signed checkpoints; "
        f"{len(checkpoints)} checkpoint signature(s) and {witnessed} witness {entries} valid"
    )


def bundle_verify(path: Path, trusted_key: bytes | None = None) -> list[str]:
    """Verify the bundle; return lines to print. Raises Changed or Unusable."""
    if not path.exists():
        raise Unusable(f"{path}: no such file")
    if not path.is_file():
        raise Unusable(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise Unusable(f"{path}: the file is empty")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise Unusable(f"{path}: not a readable zip file ({exc})") from exc
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise Changed(duplicates[0], "appears more than once in the zip")
        for fixed in FIXED_MEMBERS:
            if fixed not in names:
                raise Changed(fixed, "is missing")
        manifest_bytes = _read(archive, "manifest.json")
        manifest = _json(manifest_bytes, "manifest.json")
        if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
            raise Changed("manifest.json", "is not an evidence bundle manifest")
        signing = manifest.get("signing") or {}
        public_raw = _b64(signing.get("public_key"), "the signing key", "manifest.json", 32)
        key_file = _json(_read(archive, "signing-key.json"), "signing-key.json")
        if (
            not isinstance(key_file, dict)
            or key_file.get("public_key") != signing.get("public_key")
            or key_file.get("key_id") != signing.get("key_id")
        ):
            raise Changed("signing-key.json", "does not match the key named in manifest.json")
        if trusted_key is not None and public_raw != trusted_key:
            raise Changed("manifest.sig", "the bundle was signed with a key other than the trusted key")
        signature = _b64(_read(archive, "manifest.sig").decode("ascii", "replace"), "the signature", "manifest.sig", 64)
        if not _ed25519_verify(public_raw, signature, manifest_bytes):
            raise Changed(
                "manifest.json", "the Ed25519 signature in manifest.sig does not match it (one of the two was changed)"
            )
        files = manifest.get("files")
        if not isinstance(files, list):
            raise Changed("manifest.json", "lists no files")
        listed: dict[str, dict[str, Any]] = {}
        for item in files:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise Changed("manifest.json", "has a malformed file entry")
            listed[item["path"]] = item
        present = set(names) - set(FIXED_MEMBERS)
        for name in sorted(set(listed) - present):
            raise Changed(name, "is listed in the manifest but missing from the bundle (removed or renamed)")
        for name in sorted(present - set(listed)):
            raise Changed(name, "is in the bundle but not in the manifest (added or renamed)")
        for name in sorted(listed):
            sha256, size = _digest(archive, name)
            if size != listed[name].get("size"):
                raise Changed(name, f"is {size} bytes; the manifest says {listed[name].get('size')}")
            if sha256 != listed[name].get("sha256"):
                raise Changed(name, "its SHA-256 does not match the manifest")
        fingerprint = hashlib.sha256(public_raw).hexdigest()
        lines = [
            f"OK: {path.name}: {len(listed)} files match the signed manifest",
            f"signed by key {signing.get('key_id')} (SHA-256 of the public key {fingerprint})"
            + (
                " = the trusted key"
                if trusted_key is not None
                else "; compare it with the key you trust, or pass --trusted-key"
            ),
        ]
        chain = manifest.get("chain")
        if isinstance(chain, dict):
            lines.append(_chain_check(archive, chain, set(listed)))
        return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Verify a ClinAIOps evidence bundle (exit 0 intact, 1 changed, 2 unusable)."
    )
    parser.add_argument("bundle", help="the evidence bundle zip")
    parser.add_argument(
        "--trusted-key", help="the signing key's public key: base64, a file of it, or a signing-key.json"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message
        return 2 if exc.code else 0
    try:
        trusted = _trusted_key(args.trusted_key) if args.trusted_key else None
        for line in bundle_verify(Path(args.bundle), trusted):
            print(line)
    except Changed as exc:
        print(f"CHANGED: {exc}", file=sys.stderr)
        return 1
    except Unusable as exc:
        print(f"CANNOT VERIFY: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last guard: an auditor sees a sentence, never a traceback
        print(f"CANNOT VERIFY: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
