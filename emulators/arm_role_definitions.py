"""ARM's role definitions: GET and filtered listing of built-in and custom roles, and the PUT and DELETE of a custom
role, for emulators.arm.ArmState.

Split from emulators.arm by concept. `RoleDefinitions` is a mixin over ArmState's state, named below; parsing a
custom role's body is emulators.arm_custom_roles.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from emulators.arm_assignments import RoleAssignment, utc_text
from emulators.arm_custom_roles import parse_custom_role
from emulators.arm_generic import Call
from emulators.arm_ids import is_at_or_above, is_guid, subscription_of
from emulators.arm_resources import ArmError
from emulators.arm_roles import ROLES_BY_GUID, RoleDefinition
from emulators.core import MovableClock

_DEFINITION_FILTER_TERM = re.compile(r"(?P<field>roleName|type)\s+eq\s+'(?P<value>[^']*)'", re.I)


class RoleDefinitions:
    """Built-in and custom role definitions; mixed into ArmState, whose state it uses."""

    _lock: threading.RLock
    _clock: MovableClock
    _assignments: dict[str, RoleAssignment]
    _custom_roles: dict[str, RoleDefinition]
    subscription_id: str

    def role(self, guid: str) -> RoleDefinition | None: ...  # ArmState's
    def _check_scope(self, scope: str) -> str: ...  # ArmState's

    def get_role_definition(self, scope: str, guid: str) -> dict[str, Any]:
        role = self.role(guid)
        if role is None:
            raise ArmError(404, "RoleDefinitionDoesNotExist", f"The role definition '{guid}' could not be found.")
        return role.to_arm(subscription_of(scope))

    def list_role_definitions(self, scope: str, filter_text: str | None) -> list[dict[str, Any]]:
        wanted: dict[str, str] = {}
        for term in re.split(r"\s+and\s+", filter_text.strip(), flags=re.I) if filter_text else []:
            match = _DEFINITION_FILTER_TERM.fullmatch(term.strip())
            if not match:
                raise ArmError(400, "InvalidFilter", f"$filter: unsupported expression ({term.strip()!r})")
            wanted[match.group("field").lower()] = match.group("value").lower()
        with self._lock:
            customs = [
                r
                for r in self._custom_roles.values()
                if any(is_at_or_above(a, scope) or is_at_or_above(scope, a) for a in r.assignable_scopes)
            ]
        roles = [
            r
            for r in (*ROLES_BY_GUID.values(), *customs)
            if wanted.get("rolename", r.role_name.lower()) == r.role_name.lower()
            and wanted.get("type", r.role_type.lower()) == r.role_type.lower()
        ]
        return [r.to_arm(subscription_of(scope)) for r in roles]

    def put_role_definition(self, scope: str, guid: str, body: object, call: Call) -> tuple[int, dict[str, Any]]:
        """Create or replace a custom role; 201 when new, 200 when replaced."""
        scope = self._check_scope(scope)
        if not is_guid(guid):
            raise ArmError(
                400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid: it must be a GUID."
            )
        guid = guid.lower()
        with self._lock:
            previous = self._custom_roles.get(guid)
            role = parse_custom_role(
                guid,
                body,
                subscription_id=self.subscription_id,
                now=utc_text(self._clock),
                caller=call.caller_oid or None,
                previous=previous,
            )
            for other in (*ROLES_BY_GUID.values(), *self._custom_roles.values()):
                if other.guid != guid and other.role_name.lower() == role.role_name.lower():
                    raise ArmError(
                        409,
                        "RoleDefinitionWithSameNameExists",
                        f"A role definition cannot be updated with a name that already exists ('{role.role_name}').",
                    )
            self._custom_roles[guid] = role
        return (200 if previous else 201), role.to_arm(self.subscription_id)

    def delete_role_definition(self, scope: str, guid: str, call: Call) -> dict[str, Any] | None:
        """The deleted custom role, or None when there was none; refused while any assignment names it."""
        self._check_scope(scope)
        guid = guid.lower()
        if guid in ROLES_BY_GUID:
            raise ArmError(400, "RoleDefinitionIdIsBuiltIn", f"The built-in role '{guid}' cannot be deleted.")
        with self._lock:
            role = self._custom_roles.get(guid)
            if role is None:
                return None
            if any(a.role_guid == guid for a in self._assignments.values()):
                raise ArmError(
                    409,
                    "RoleDefinitionHasAssignments",
                    f"There are existing role assignments referencing role '{role.role_name}' ({guid}); delete them "
                    "before deleting the role definition.",
                )
            del self._custom_roles[guid]
        return role.to_arm(self.subscription_id)
