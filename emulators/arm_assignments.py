"""ARM's role assignments: the stored assignment, and its PUT, GET, DELETE and filtered listing, for
emulators.arm.ArmState.

Split from emulators.arm by concept. `RoleAssignments` is a mixin over ArmState's state, named below; ArmState keeps
the scope check, the caller's evidence and the events these writes raise.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from emulators.arm_generic import DELETE_SUCCESS, WRITE_SUCCESS, Call
from emulators.arm_ids import is_at_or_above, is_guid, same_id
from emulators.arm_resources import ArmError, bad_request
from emulators.arm_roles import RoleDefinition, role_guid_from_id
from emulators.core import MovableClock
from emulators.rbac_propagation import RbacPropagation

AUTHORIZATION = "/providers/Microsoft.Authorization/"
ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
_FILTER_TERM = re.compile(
    r"(?P<at>atScope\(\))|principalId\s+eq\s+'(?P<pid>[^']*)'|assignedTo\('(?P<assigned>[^']*)'\)", re.I
)


def utc_text(clock: MovableClock) -> str:
    return clock.now().isoformat().replace("+00:00", "Z")


@dataclass
class RoleAssignment:
    """A stored role assignment; `scope` is normalized ("/subscriptions/...")."""

    name: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str
    description: str | None
    condition: str | None
    condition_version: str | None
    created_on: str
    updated_on: str
    created_by: str | None
    updated_by: str | None

    @property
    def id(self) -> str:
        return f"{self.scope.rstrip('/')}{AUTHORIZATION}roleAssignments/{self.name}"

    @property
    def role_guid(self) -> str:
        return self.role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()

    def to_arm(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": self.role_definition_id,
                "principalId": self.principal_id,
                "principalType": self.principal_type,
                "scope": self.scope,
                "condition": self.condition,
                "conditionVersion": self.condition_version,
                "createdOn": self.created_on,
                "updatedOn": self.updated_on,
                "createdBy": self.created_by,
                "updatedBy": self.updated_by,
                "delegatedManagedIdentityResourceId": None,
                "description": self.description,
            },
        }


class RoleAssignments:
    """Role assignments as ARM stores and answers them; mixed into ArmState, whose state it uses."""

    _lock: threading.RLock
    _clock: MovableClock
    _assignments: dict[str, RoleAssignment]
    subscription_id: str
    rbac: RbacPropagation[RoleAssignment]

    def role(self, guid: str) -> RoleDefinition | None: ...  # ArmState's
    def _check_scope(self, scope: str) -> str: ...  # ArmState's
    def _evidence(self, call: Call, scope: str, action: str, target_role: str | None) -> dict[str, Any]: ...
    def _emit(
        self,
        event_type: str,
        resource_uri: str,
        operation: str,
        provider: str,
        call: Call,
        evidence: dict[str, Any],
        *,
        include_http: bool,
    ) -> None: ...

    def add_role_assignment(
        self,
        scope: str,
        role_definition_id: str,
        principal_id: str,
        *,
        principal_type: str = "ServicePrincipal",
        name: str | None = None,
    ) -> dict[str, Any]:
        """Seed an assignment without a request (configuration, tests); validated like a PUT, raises no event."""
        body = {
            "properties": {
                "roleDefinitionId": role_definition_id,
                "principalId": principal_id,
                "principalType": principal_type,
            }
        }
        _, document = self.put_role_assignment(scope, name or str(uuid.uuid4()), body, Call.internal(), emit=False)
        return document

    def role_assignments(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a.to_arm() for a in self._assignments.values()]

    def put_role_assignment(
        self, scope: str, name: str, body: object, call: Call, *, emit: bool = True
    ) -> tuple[int, dict[str, Any]]:
        scope = self._check_scope(scope)
        if not is_guid(name):
            raise ArmError(
                400, "InvalidRoleAssignmentId", f"The role assignment ID '{name}' is not valid: it must be a GUID."
            )
        properties = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict):
            raise bad_request("properties", "required: {roleDefinitionId, principalId, principalType}")
        role_definition_id = properties.get("roleDefinitionId")
        guid = role_guid_from_id(role_definition_id) if isinstance(role_definition_id, str) else None
        if guid is None:
            raise bad_request(
                "properties.roleDefinitionId",
                "must be /subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions/{guid} "
                f"({role_definition_id!r})",
                code="InvalidRoleDefinitionId",
            )
        role = self.role(guid)
        if role is None:
            raise ArmError(
                400,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{guid}' does not exist.",
            )
        if not any(is_at_or_above(allowed, scope) for allowed in role.assignable_scopes):
            raise ArmError(
                400,
                "RoleAssignmentScopeNotAssignableToRoleDefinition",
                f"The role '{role.role_name}' ({guid}) is not assignable at scope '{scope}': its assignableScopes "
                f"are {list(role.assignable_scopes)}.",
            )
        principal_id = properties.get("principalId")
        if not is_guid(principal_id):
            raise bad_request("properties.principalId", f"must be a GUID ({principal_id!r})", code="InvalidPrincipalId")
        principal_type = properties.get("principalType") or "User"
        if principal_type not in PRINCIPAL_TYPES:
            raise bad_request("properties.principalType", f"must be one of {', '.join(PRINCIPAL_TYPES)}")
        canonical_role_id = f"/subscriptions/{self.subscription_id}{AUTHORIZATION}roleDefinitions/{guid}"
        now = utc_text(self._clock)
        with self._lock:
            evidence = self._evidence(call, scope, ASSIGNMENT_WRITE, guid)
            key = f"{scope.rstrip('/')}{AUTHORIZATION}roleAssignments/{name}".lower()
            existing = self._assignments.get(key)
            for other in self._assignments.values():
                if (
                    other is not existing
                    and other.role_guid == guid
                    and other.principal_id.lower() == str(principal_id).lower()
                    and same_id(other.scope, scope)
                ):
                    raise ArmError(
                        409,
                        "RoleAssignmentExists",
                        f"The role assignment already exists. The ID of the existing role assignment is {other.name}.",
                    )
            if existing is not None and (
                existing.role_guid != guid or existing.principal_id.lower() != str(principal_id).lower()
            ):
                raise ArmError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
            assignment = RoleAssignment(
                name=name.lower(),
                scope=scope,
                role_definition_id=canonical_role_id,
                principal_id=str(principal_id).lower(),
                principal_type=principal_type,
                description=properties.get("description"),
                condition=properties.get("condition"),
                condition_version=properties.get("conditionVersion"),
                created_on=existing.created_on if existing else now,
                updated_on=now,
                created_by=existing.created_by if existing else (call.caller_oid or None),
                updated_by=call.caller_oid or None,
            )
            self._assignments[key] = assignment
            self.rbac.record(key, assignment, self._clock.timestamp())
        if emit:
            self._emit(
                WRITE_SUCCESS,
                assignment.id,
                ASSIGNMENT_WRITE,
                "Microsoft.Authorization",
                call,
                evidence,
                include_http=existing is not None,
            )
        return (200 if existing else 201), assignment.to_arm()

    def get_role_assignment(self, scope: str, name: str) -> dict[str, Any]:
        scope = self._check_scope(scope)
        with self._lock:
            found = self._assignments.get(f"{scope.rstrip('/')}{AUTHORIZATION}roleAssignments/{name}".lower())
        if found is None:
            raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return found.to_arm()

    def delete_role_assignment(self, scope: str, name: str, call: Call) -> dict[str, Any] | None:
        """The deleted assignment, or None when there was none (ARM answers 204 then)."""
        scope = self._check_scope(scope)
        with self._lock:
            key = f"{scope.rstrip('/')}{AUTHORIZATION}roleAssignments/{name}".lower()
            found = self._assignments.get(key)
            if found is None:
                return None
            evidence = self._evidence(call, scope, ASSIGNMENT_DELETE, found.role_guid)
            del self._assignments[key]
            self.rbac.record(key, None, self._clock.timestamp())
        self._emit(
            DELETE_SUCCESS, found.id, ASSIGNMENT_DELETE, "Microsoft.Authorization", call, evidence, include_http=True
        )
        return found.to_arm()

    def list_role_assignments(self, scope: str, filter_text: str | None) -> list[dict[str, Any]]:
        """ARM's filters: none (at, above and below), atScope() (at and above), principalId eq / assignedTo
        (that principal at, above and below), and their conjunction with `and`."""
        scope = self._check_scope(scope)
        at_scope_only = False
        principal: str | None = None
        for term in re.split(r"\s+and\s+", (filter_text or "").strip(), flags=re.I) if filter_text else []:
            match = _FILTER_TERM.fullmatch(term.strip())
            if not match:
                raise ArmError(400, "InvalidFilter", f"$filter: unsupported expression ({term.strip()!r})")
            if match.group("at"):
                at_scope_only = True
            else:
                principal = (match.group("pid") or match.group("assigned") or "").lower()
        with self._lock:
            chosen = []
            for a in self._assignments.values():
                above = is_at_or_above(a.scope, scope)
                related = above if at_scope_only else above or is_at_or_above(scope, a.scope)
                if related and (principal is None or a.principal_id.lower() == principal):
                    chosen.append(a.to_arm())
        return chosen
