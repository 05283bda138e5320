"""In-memory ARM role assignments with ARM's scope inheritance (an assignment applies at and below its scope)."""

from __future__ import annotations

import uuid

from shared.errors import InvalidInput
from shared.model import RoleAssignment


def scope_covers(parent: str, child: str) -> bool:
    """True when an assignment at `parent` applies at `child` (case-insensitive, on path-segment boundaries)."""
    p, c = parent.rstrip("/").lower(), child.rstrip("/").lower()
    return p == "" or c == p or c.startswith(p + "/")


class FakeAccessControl:
    def __init__(self) -> None:
        self._assignments: dict[str, RoleAssignment] = {}

    def list_assignments(self, scope: str) -> list[RoleAssignment]:
        return [a for a in self._assignments.values() if scope_covers(a.scope, scope)]

    def create_assignment(
        self, scope: str, role_definition_id: str, principal_id: str, principal_type: str, name: str | None = None
    ) -> RoleAssignment:
        if not scope.startswith("/"):
            raise InvalidInput("scope", f"not an ARM resource id ({scope!r})")
        for a in self._assignments.values():
            if (
                a.scope.lower() == scope.rstrip("/").lower()
                and a.role_guid == role_definition_id.rsplit("/", 1)[-1].lower()
                and a.principal_id.lower() == principal_id.lower()
            ):
                return a
        name = name or str(uuid.uuid4())
        assignment_id = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"
        assignment = RoleAssignment(assignment_id, scope.rstrip("/"), role_definition_id, principal_id, principal_type)
        self._assignments[assignment_id.lower()] = assignment
        return assignment

    def delete_assignment(self, assignment_id: str) -> bool:
        return self._assignments.pop(assignment_id.lower(), None) is not None

    def all(self) -> list[RoleAssignment]:
        return list(self._assignments.values())
