"""In-memory Managed HSM local RBAC behind the AccessControl port, as shared.azure.hsm_access presents it: ARM-shaped
scopes and ids, assignments at `/`, `/keys`, `/keys/<name>` applying at and below, a listing that never reaches down,
no principal type or creation time, and the emulator's built-in role definitions (one source for both)."""

from __future__ import annotations

import uuid
from typing import Any

from shared.arm_ids import role_definition_guid
from shared.errors import Conflict, InvalidInput, NotFound
from shared.local_rbac import HsmScopes
from shared.model import RoleAssignment
from shared.roles.builtin import hsm_role_definition_id
from shared.roles.definitions import RoleDefinition, role_definition_from_arm


def _covers(outer: str, inner: str) -> bool:
    return outer == "/" or inner.lower() == outer.lower() or inner.lower().startswith(outer.lower() + "/")


class FakeManagedHsmAccessControl:
    def __init__(self, resource_id: str) -> None:
        from emulators.managed_hsm_rbac import built_in_definitions

        self.scopes = HsmScopes(resource_id)
        self._assignments: dict[str, tuple[str, str, str]] = {}  # name -> (local scope, role guid, principal)
        self._definitions: dict[str, RoleDefinition] = {
            guid: role_definition_from_arm(d.to_json()) for guid, d in built_in_definitions().items()
        }

    def _local(self, scope: str) -> str:
        try:
            return self.scopes.local(scope)
        except ValueError as exc:
            raise InvalidInput("scope", str(exc)) from exc

    def _assignment(self, name: str) -> RoleAssignment:
        local, guid, principal = self._assignments[name]
        return RoleAssignment(
            self.scopes.assignment_id(local, name),
            self.scopes.arm(local),
            hsm_role_definition_id(guid),
            principal,
            "Unknown",
            created_on=None,
        )

    def list_assignments(self, scope: str) -> list[RoleAssignment]:
        local = self._local(scope)
        return [self._assignment(n) for n, (s, _, _) in self._assignments.items() if _covers(s, local)]

    def create_assignment(
        self, scope: str, role_definition_id: str, principal_id: str, principal_type: str, name: str | None = None
    ) -> RoleAssignment:
        local = self._local(scope)
        guid = role_definition_guid(role_definition_id)
        if guid not in self._definitions:
            raise InvalidInput("role_definition_id", f"no role definition {guid} in the Managed HSM")
        for n, (s, g, p) in self._assignments.items():
            if (s.lower(), g, p) == (local.lower(), guid, principal_id.lower()):
                return self._assignment(n)
        name = (name or str(uuid.uuid4())).lower()
        if name in self._assignments:
            raise Conflict(f"role assignment {name} exists with other values")
        self._assignments[name] = (local, guid, principal_id.lower())
        return self._assignment(name)

    def delete_assignment(self, assignment_id: str) -> bool:
        local, name = self.scopes.split_assignment_id(assignment_id)
        found = self._assignments.get(name.lower())
        if found is None or found[0].lower() != local.lower():
            return False
        del self._assignments[name.lower()]
        return True

    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        found = self._definitions.get(role_definition_guid(role_definition_id))
        if found is None:
            raise NotFound(f"Managed HSM role definition {role_definition_id}: not found")
        return found

    def define_role(self, name: str, *, data_actions: list[str], not_data_actions: list[str] | None = None) -> str:
        guid = str(uuid.uuid4())
        document: dict[str, Any] = {
            "name": guid,
            "properties": {
                "roleName": name,
                "type": "CustomRole",
                "permissions": [{"dataActions": data_actions, "notDataActions": not_data_actions or []}],
            },
        }
        self._definitions[guid] = role_definition_from_arm(document)
        return guid
