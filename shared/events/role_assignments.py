"""ARM's role-assignment events (`Microsoft.Resources.ResourceWriteSuccess` / `ResourceDeleteSuccess` for
`roleAssignments/write|delete`), kept only when the assignment's scope covers a managed key.

A resource group or subscription topic sends an event for every write in it; all but role-assignment changes are not
ours, and an assignment id that does not parse is malformed rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from shared.events.envelope import Common
from shared.events.fields import Fields, malformed, reject, required_text, text
from shared.events.scope import ManagedScope
from shared.events.values import (
    RESOURCE_DELETE_SUCCESS,
    RESOURCE_WRITE_SUCCESS,
    ROLE_ASSIGNMENT_DELETE,
    ROLE_ASSIGNMENT_WRITE,
    RejectReason,
    RoleAssignmentChanged,
)
from shared.untrusted import describe_value

ROLE_ASSIGNMENTS_SEGMENT = "/providers/microsoft.authorization/roleassignments/"
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def caller_object_id(data: Fields) -> str | None:
    """Who made the ARM change, as the event says it: the caller's token's object id (`data.claims`), else the
    principal of the assignment that allowed it (`data.authorization.evidence.principalId`, dashes removed by ARM).
    Lower-case, without dashes; None when the event names nobody."""
    claims = data.get("claims")
    found = None
    if isinstance(claims, Mapping):
        found = claims.get(OBJECT_ID_CLAIM) or claims.get("oid")
    if not isinstance(found, str):
        authorization = data.get("authorization")
        evidence = authorization.get("evidence") if isinstance(authorization, Mapping) else None
        found = evidence.get("principalId") if isinstance(evidence, Mapping) else None
    return found.replace("-", "").lower() if isinstance(found, str) and found.strip() else None


def _by_this_app(data: Fields, scope: ManagedScope) -> bool:
    """Whether the event's caller is the app's own identity (the inventory's `app_identity`)."""
    app = getattr(scope, "app_identity", None)
    caller = caller_object_id(data)
    return bool(app and caller and caller == app.replace("-", "").lower())


def role_assignment_event(event_type: str, common: Common, data: Fields, scope: ManagedScope) -> RoleAssignmentChanged:
    operation_name = required_text(data, "operationName")
    operation: Literal["write", "delete"]
    if operation_name.lower() == ROLE_ASSIGNMENT_WRITE.lower():
        operation = "write"
    elif operation_name.lower() == ROLE_ASSIGNMENT_DELETE.lower():
        operation = "delete"
    else:
        if _by_this_app(data, scope):
            # The app's own consumer move (a DES or MySQL PATCH) echoed back by a resource group topic: known, and
            # nothing to act on or warn about.
            resource = data.get("resourceUri") or common.subject
            what = f"{describe_value(operation_name)} on {describe_value(resource, limit=300)}"
            reject(RejectReason.OWN_CHANGE, f"this app's own change: {what}")
        reject(
            RejectReason.NOT_OURS,
            f"data.operationName: {describe_value(operation_name)} is not a role assignment change",
        )
    expected = RESOURCE_WRITE_SUCCESS if operation == "write" else RESOURCE_DELETE_SUCCESS
    if event_type != expected:
        malformed(f"data.operationName: {describe_value(operation_name)} does not match event type {event_type}")

    resource_uri = text(data, "resourceUri")
    assignment_id = resource_uri or common.subject
    label = "data.resourceUri" if resource_uri else "subject"
    if not assignment_id:
        malformed("data.resourceUri: missing, and there is no subject")
    cut = assignment_id.lower().rfind(ROLE_ASSIGNMENTS_SEGMENT)
    name = assignment_id[cut + len(ROLE_ASSIGNMENTS_SEGMENT) :].strip("/") if cut >= 0 else ""
    if cut < 0 or not name or "/" in name:
        malformed(f"{label}: not a role assignment id ({describe_value(assignment_id)})")
    assignment_scope = assignment_id[:cut].rstrip("/") or "/"

    affected = tuple(scope.keys_under_scope(assignment_scope))
    if not affected:
        reject(
            RejectReason.OUTSIDE_INVENTORY,
            f"role assignment scope {describe_value(assignment_scope)} covers no managed key",
        )
    return RoleAssignmentChanged(
        event_type=event_type,
        event_id=common.event_id,
        event_time=common.event_time,
        operation=operation,
        assignment_id=assignment_id,
        scope=assignment_scope,
        affected_keys=affected,
        topic=common.topic,
        schema=common.schema,
    )
