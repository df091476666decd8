"""Shared by the lifecycle commands: argument lookups, error conversion and the gates table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import User
from inference.models import ModelVersion
from inference.selectors import model_version_latest
from inference.services import model_version_find

VERSION_HELP = "model hash or a unique prefix (≥6 characters), or 'latest'"
LISTED = 12  # failures and findings shown in a gates table before "… and N more"


def command_error(exc: ApplicationError) -> CommandError:
    details = "; ".join(f"{field}: {', '.join(messages)}" for field, messages in exc.fields.items())
    return CommandError(f"{exc.message} {details}".strip())


def version_from_argument(value: str) -> ModelVersion:
    if value == "latest":
        version = model_version_latest()
        if version is None:
            raise CommandError("there is no model version yet; run `manage.py train` first")
        return version
    try:
        return model_version_find(value)
    except ApplicationError as exc:
        raise command_error(exc) from exc


def user_from_argument(username: str) -> User:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"no active user {username!r}")
    return user


def gates_table(gates: dict[str, Any], *, listed: int | None = LISTED) -> list[str]:
    """One line per gate, then the failures and the findings that need a full review."""
    from inference.gates import gate_summary

    lines = [f"  {'gate':<16} {'hard':<5} {'status':<18} numbers"]
    for name, gate in gates.items():
        lines.append(
            f"  {name:<16} {'yes' if gate['hard'] else 'no':<5} {gate['status']:<18} {gate_summary(name, gate)}"
        )
    # A hard gate's failures reject the version; an unenforced gate's failures are repeated as review findings.
    failures = [f for gate in gates.values() if gate["hard"] for f in gate.get("failures", [])]
    reasons = [r for gate in gates.values() for r in gate.get("review_reasons", [])]
    limit = len(failures) + len(reasons) if listed is None else listed
    lines.extend(f"  ✗ {failure}" for failure in failures[:limit])
    if len(failures) > limit:
        lines.append(f"  … and {len(failures) - limit} more failures (--all lists them)")
    lines.extend(f"  ! needs full review: {reason}" for reason in reasons[:limit])
    if len(reasons) > limit:
        lines.append(f"  … and {len(reasons) - limit} more findings (--all lists them)")
    return lines
