"""Model sign-offs: the two e-signatures that promote a validated model version to approved (DESIGN §3).

Promotion needs two sign-offs by different people: one ML engineer and one clinical safety officer. Each is an
electronic signature (governance.services: password re-entry, printed name, UTC time, meaning "signed_off")
bound to the version's signed-manifest hash. When the second one lands, the version becomes approved in the same
transaction, and the model signing key signs an approval attestation naming both sign-offs (inference.manifest).
Only then may it serve on production or canary (inference.services.serving.SERVABLE_STATES; serving checks the
attestation, not the row).

Refused, and audited as denied: a signer without one of the two roles; a version that is not validated; a
second sign-off by the same person (self-approval); a second sign-off for a role already signed; a version whose
manifest no longer verifies; a safety sign-off that does not acknowledge the gates' "needs full review" findings.
A wrong password is refused and audited by `signature_reauthenticate` itself.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, NoReturn

from django.db import transaction
from django.db.models import QuerySet

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record_denied
from clinaiops.core.errors import ApplicationError, Conflict, InvalidTransition, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from governance.models import ModelSignoff, SignatureMeaning, SignoffRole
from governance.services import signature_create, signature_reauthenticate, signature_verify
from inference.gates.result import StoredGateInvalid
from inference.manifest import ApprovalSignoff, manifest_verify
from inference.models import ApprovalState, ModelVersion
from inference.services.registry import model_version_approve

RECORD_TYPE = "model_version"
SIGNOFF_ROLES: dict[str, str] = {
    Role.ML_ENGINEER: SignoffRole.ML_ENGINEER,
    Role.SAFETY_OFFICER: SignoffRole.SAFETY_OFFICER,
}


def signoff_content(*, version: ModelVersion, role: str, acknowledged: list[str]) -> dict[str, Any]:
    """What a sign-off signature covers: the version, its signed manifest and what the signer acknowledged."""
    return {
        "model_version_id": version.pk,
        "model_sha256": version.sha256,
        "manifest_sha256": version.manifest_sha256,
        "role": role,
        "acknowledged_review_reasons": acknowledged,
    }


def _refusal(*, actor: User, version: ModelVersion, acknowledge_full_review: bool) -> ApplicationError | None:
    """Why `actor` may not sign off `version` now, or None. Checked before the password and again under lock."""
    role = SIGNOFF_ROLES.get(actor.role)
    if role is None:
        return PermissionRefused(
            "Only an ML engineer or a clinical safety officer can sign off a model version.", code="signoff_wrong_role"
        )
    if version.approval_state != ApprovalState.VALIDATED:
        return InvalidTransition(
            f"Only a validated model version can be signed off; {version.short_hash} is {version.approval_state}.",
            code="signoff_not_validated",
        )
    existing = list(ModelSignoff.objects.filter(model_version=version).select_related("signer"))
    if any(signoff.signer_id == actor.pk for signoff in existing):
        return Conflict(
            "You have already signed off this version; the other sign-off must come from a different person.",
            code="signoff_same_person",
        )
    taken = next((signoff for signoff in existing if signoff.role == role), None)
    if taken is not None:
        other = SignoffRole.SAFETY_OFFICER if role == SignoffRole.ML_ENGINEER else SignoffRole.ML_ENGINEER
        return Conflict(
            f"The {SignoffRole(role).label} sign-off is already given; the remaining sign-off must come from a "
            f"{SignoffRole(other).label}.",
            code="signoff_role_taken",
        )
    try:
        findings = version.review_reasons
    except StoredGateInvalid:
        # Nobody can sign off gates that cannot be read; the manifest check would refuse an edited row as well.
        return ValidationFailed(
            "This version's stored gates cannot be read, so it cannot be signed off.", code="signoff_gates_unreadable"
        )
    if role == SignoffRole.SAFETY_OFFICER and findings and not acknowledge_full_review:
        return ValidationFailed(
            "The gates say this version needs a full review; the safety sign-off must acknowledge each finding.",
            fields={"acknowledge_full_review": list(findings)},
            code="signoff_review_not_acknowledged",
        )
    return None


def _refuse(*, actor: User, version: ModelVersion, error: ApplicationError) -> NoReturn:
    audit_record_denied(
        action=AuditAction.SIGNATURE_REFUSED, object_type=RECORD_TYPE, object_id=version.pk, actor=actor,
        reason=error.code,
    )  # fmt: skip
    raise error


def model_signoff_create(
    *, actor: User, version: ModelVersion, password: str, acknowledge_full_review: bool = False
) -> ModelSignoff:
    """Sign off a validated version as an ML engineer or clinical safety officer (re-entering the password).
    The second sign-off, by the other role and another person, approves the version in the same transaction."""
    stored = ModelVersion.objects.get(pk=version.pk)  # judge the state as stored, not a stale instance
    error = _refusal(actor=actor, version=stored, acknowledge_full_review=acknowledge_full_review)
    if error is not None:
        _refuse(actor=actor, version=stored, error=error)
    verification = manifest_verify(stored)
    if not verification.ok:
        _refuse(
            actor=actor,
            version=stored,
            error=ValidationFailed(
                f"This version's manifest does not verify, so it cannot be signed off: {verification}.",
                code="signoff_manifest_invalid",
            ),
        )
    signature_reauthenticate(signer=actor, password=password, record_type=RECORD_TYPE, record_id=version.pk)
    role = SIGNOFF_ROLES[actor.role]
    acknowledged = list(stored.review_reasons) if acknowledge_full_review else []
    try:
        with transaction.atomic():
            # Serializes sign-offs of one version: two people signing at once cannot both be "the first".
            locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
            error = _refusal(actor=actor, version=locked, acknowledge_full_review=acknowledge_full_review)
            if error is not None:
                raise error
            signature = signature_create(
                signer=actor,
                meaning=SignatureMeaning.SIGNED_OFF,
                record_type=RECORD_TYPE,
                record_id=locked.pk,
                content=signoff_content(version=locked, role=role, acknowledged=acknowledged),
            )
            signoff = ModelSignoff.objects.create(
                model_version=locked,
                signer=actor,
                role=role,
                manifest_sha256=locked.manifest_sha256,
                acknowledged_review_reasons=acknowledged,
                signature=signature,
                signed_at=signature.signed_at,
            )
            roles = set(ModelSignoff.objects.filter(model_version=locked).values_list("role", flat=True))
            if roles == set(SignoffRole.values):
                both = [
                    ApprovalSignoff(
                        signoff_id=each.pk,
                        signature_id=each.signature_id,
                        role=each.role,
                        signed_at=each.signed_at.astimezone(UTC).isoformat(),
                    )
                    for each in ModelSignoff.objects.filter(model_version=locked)
                ]
                model_version_approve(version=locked, actor=actor, signoffs=both)
    except ApplicationError as exc:
        # Lost a race with another signer between the first check and the lock: refused, and recorded as such.
        _refuse(actor=actor, version=stored, error=exc)
    version.approval_state = locked.approval_state  # the caller's instance follows the stored state
    return signoff


def model_signoff_verify(signoff: ModelSignoff) -> bool:
    """The signature still matches the sign-off's content, and the version's manifest is the one signed."""
    version = signoff.model_version
    return signoff.manifest_sha256 == version.manifest_sha256 and signature_verify(
        signature=signoff.signature,
        record_type=RECORD_TYPE,
        record_id=version.pk,
        content=signoff_content(
            version=version, role=signoff.role, acknowledged=list(signoff.acknowledged_review_reasons)
        ),
    )


def model_signoff_list(*, version: ModelVersion) -> QuerySet[ModelSignoff]:
    return (
        ModelSignoff.objects.filter(model_version=version).select_related("signer", "signature").order_by("signed_at")
    )


def model_signoffs_missing(*, version: ModelVersion) -> list[str]:
    """The sign-off roles still missing, as labels, for messages such as the promote command's."""
    have = set(ModelSignoff.objects.filter(model_version=version).values_list("role", flat=True))
    return [SignoffRole(role).label for role in SignoffRole.values if role not in have]
