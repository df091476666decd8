"""What the lifecycle commands share (inference's and governance's): argument lookups, error conversion and the
gates table. Public, so governance's commands (signoff, lineage, change_plan) import it like any module; it lives
outside `commands/` so Django does not take it for a command."""

from __future__ import annotations

from django.core.management.base import CommandError

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import User
from inference.gates.outcome import GateOutcome
from inference.models import Arm, ModelVersion
from inference.selectors import model_version_latest, serving_version
from inference.services.registry import model_version_find

VERSION_HELP = "model hash or a unique prefix (≥6 characters), 'latest', or an arm: 'production', 'canary', 'shadow'"
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
    if value in Arm.values:
        serving = serving_version(arm=value)
        if serving is None:
            raise CommandError(f"no model version serves {value}; `manage.py promote` puts one there")
        return serving
    try:
        return model_version_find(value)
    except ApplicationError as exc:
        raise command_error(exc) from exc


def user_from_argument(username: str) -> User:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"no active user {username!r}")
    return user


def gates_table(outcome: GateOutcome, *, listed: int | None = LISTED) -> list[str]:
    """One line per gate, then the failures that reject the version and the findings that need a full review."""
    lines = [f"  {'gate':<16} {'hard':<5} {'status':<18} numbers"]
    for result in outcome.results:
        hard = "yes" if result.hard else "no"
        lines.append(f"  {result.name:<16} {hard:<5} {result.status.label:<18} {result.summary}")
    failures, findings = outcome.rejections, outcome.findings
    limit = len(failures) + len(findings) if listed is None else listed
    lines.extend(f"  ✗ {failure}" for failure in failures[:limit])
    if len(failures) > limit:
        lines.append(f"  … and {len(failures) - limit} more failures (--all lists them)")
    lines.extend(f"  ! needs full review: {finding}" for finding in findings[:limit])
    if len(findings) > limit:
        lines.append(f"  … and {len(findings) - limit} more findings (--all lists them)")
    return lines
