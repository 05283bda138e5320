"""In-memory ARM role assignments with ARM's scope inheritance (an assignment applies at and below its scope), and
role definitions: Azure's built-in ones as the ARM emulator serves them, plus any custom role a test defines."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from shared.arm_ids import normalize_scope, role_definition_guid, scope_covers
from shared.errors import InvalidInput, NotFound
from shared.model import RoleAssignment
from shared.roles.definitions import RoleDefinition, role_definition_from_arm


def _built_in_definitions() -> dict[str, RoleDefinition]:
    # The emulator's copy of Microsoft's definitions: one source for the fake and the emulator, and not the app's.
    from emulators.arm_roles import BUILT_IN_ROLES

    return {r.guid: role_definition_from_arm(r.to_arm(None)) for r in BUILT_IN_ROLES}


class FakeAccessControl:
    """`clock` (optional) stamps each new assignment's `created_on`, as ARM's `createdOn`; without one, assignments
    carry none (never old enough for a removal that waits on RBAC propagation)."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock
        self._assignments: dict[str, RoleAssignment] = {}
        self._definitions: dict[str, RoleDefinition] = _built_in_definitions()
        self.definition_reads = 0

    def list_assignments(self, scope: str) -> list[RoleAssignment]:
        return [a for a in self._assignments.values() if scope_covers(a.scope, scope)]

    def create_assignment(
        self, scope: str, role_definition_id: str, principal_id: str, principal_type: str, name: str | None = None
    ) -> RoleAssignment:
        if not scope.startswith("/"):
            raise InvalidInput("scope", f"not an ARM resource id ({scope!r})")
        guid = role_definition_guid(role_definition_id)
        for a in self._assignments.values():
            if (
                normalize_scope(a.scope) == normalize_scope(scope)
                and a.role_guid == guid
                and a.principal_id.lower() == principal_id.lower()
            ):
                return a
        name = name or str(uuid.uuid4())
        assignment_id = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"
        created = self.clock.now() if self.clock is not None else None
        assignment = RoleAssignment(
            assignment_id, scope.rstrip("/"), role_definition_id, principal_id, principal_type, created_on=created
        )
        self._assignments[assignment_id.lower()] = assignment
        return assignment

    def delete_assignment(self, assignment_id: str) -> bool:
        return self._assignments.pop(assignment_id.lower(), None) is not None

    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        self.definition_reads += 1
        found = self._definitions.get(role_definition_guid(role_definition_id))
        if found is None:
            raise NotFound(f"role definition {role_definition_id}: not found")
        return found

    def define_role(self, name: str, *, data_actions: list[str], not_data_actions: list[str] | None = None) -> str:
        """A custom role (as ARM would hold it after a PUT); returns its GUID."""
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

    def age(self, delta: Any) -> None:
        """Every assignment made `delta` earlier (a deployment whose grants Key Vault has long applied)."""
        for key, a in self._assignments.items():
            if a.created_on is not None:
                self._assignments[key] = replace(a, created_on=a.created_on - delta)

    def all(self) -> list[RoleAssignment]:
        return list(self._assignments.values())
