"""ARM's role-assignment events (`Microsoft.Resources.ResourceWriteSuccess` / `ResourceDeleteSuccess` for
`roleAssignments/write|delete`), kept only when the assignment's scope covers a managed key.

A resource group or subscription topic sends an event for every write in it; all but role-assignment changes are not
ours, and an assignment id that does not parse is malformed rather than guessed at.
"""

from __future__ import annotations

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


def role_assignment_event(event_type: str, common: Common, data: Fields, scope: ManagedScope) -> RoleAssignmentChanged:
    operation_name = required_text(data, "operationName")
    operation: Literal["write", "delete"]
    if operation_name.lower() == ROLE_ASSIGNMENT_WRITE.lower():
        operation = "write"
    elif operation_name.lower() == ROLE_ASSIGNMENT_DELETE.lower():
        operation = "delete"
    else:
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
