"""Role gates for portal views. A wrong role sees 404 for patient data (DESIGN §6) and 403 elsewhere;
both are audited as denied."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record_denied
from clinaiops.core.models import Role, User

View = Callable[..., HttpResponse]


def roles_required(*roles: Role) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            assert isinstance(user, User)
            if user.role not in roles:
                audit_record_denied(
                    action=AuditAction.ACCESS_DENIED,
                    object_type="portal_view",
                    object_id=view.__name__,
                    actor=user,
                    reason="wrong_role",
                )
                raise PermissionDenied("Your role cannot use this page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def request_user(request: HttpRequest) -> User:
    """The signed-in user of a request that a role gate has already let through."""
    assert isinstance(request.user, User)
    return request.user


def access_denied_record(*, actor: User, object_type: str, object_id: object, reason: str) -> None:
    """An attempt to open a record outside the actor's scope answers 404 and is audited (DESIGN §4)."""
    audit_record_denied(
        action=AuditAction.ACCESS_DENIED, object_type=object_type, object_id=object_id, actor=actor, reason=reason
    )
