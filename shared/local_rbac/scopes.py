"""ARM-shaped scopes and assignment ids for a Managed HSM's local RBAC, and back.

Local RBAC names scopes `/`, `/keys`, `/keys/<name>` and an assignment by its name alone. The app names everything by
ARM-shaped ids, so an HSM's scopes become `<hsm resource id>`, `<hsm resource id>/keys`, `<hsm resource id>/keys/<name>`
and an assignment's id becomes `<that scope>/providers/Microsoft.Authorization/roleAssignments/<name>` (ARM's own
shape): the id alone says where to delete it.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.arm_ids import normalize_scope, scope_covers

ASSIGNMENTS_SEGMENT = "/providers/Microsoft.Authorization/roleAssignments/"


def assignment_scope(assignment_id: str) -> str:
    """The scope part of an ARM-shaped assignment id (everything before `/providers/Microsoft.Authorization/...`)."""
    at = assignment_id.lower().rfind(ASSIGNMENTS_SEGMENT.lower())
    return assignment_id[:at] if at >= 0 else assignment_id


@dataclass(frozen=True)
class HsmScopes:
    """Translation for one Managed HSM, named by its ARM resource id."""

    resource_id: str

    def covers(self, scope: str) -> bool:
        """Whether `scope` lies within this HSM (the HSM itself, `/keys`, or one key)."""
        return scope_covers(self.resource_id, scope)

    def local(self, scope: str) -> str:
        """`<rid>` -> `/`, `<rid>/keys` -> `/keys`, `<rid>/keys/<k>` -> `/keys/<k>`. ValueError naming the scope for
        anything else (a scope local RBAC has no such level for)."""
        wanted = scope.strip().rstrip("/")
        if not self.covers(wanted):
            raise ValueError(f"scope {wanted!r} is not within Managed HSM {self.resource_id}")
        rest = [p for p in wanted[len(self.resource_id.rstrip("/")) :].split("/") if p]
        if not rest:
            return "/"
        if rest[0].lower() != "keys" or len(rest) > 2:
            raise ValueError(f"scope {wanted!r}: a Managed HSM assigns roles only at /, /keys or /keys/<name>")
        return "/keys" if len(rest) == 1 else f"/keys/{rest[1]}"

    def arm(self, local_scope: str) -> str:
        """The ARM-shaped scope of a local one (`/` -> the HSM's resource id)."""
        parts = [p for p in local_scope.split("/") if p]
        return self.resource_id.rstrip("/") + "".join(f"/{p}" for p in parts)

    def assignment_id(self, local_scope: str, name: str) -> str:
        return self.arm(local_scope) + ASSIGNMENTS_SEGMENT + name

    def split_assignment_id(self, assignment_id: str) -> tuple[str, str]:
        """(local scope, name) of an id made by `assignment_id`. ValueError for one that is not this HSM's."""
        scope = assignment_scope(assignment_id)
        if scope == assignment_id or normalize_scope(scope) == "":
            raise ValueError(f"{assignment_id!r} is not a role assignment id")
        name = assignment_id[len(scope) + len(ASSIGNMENTS_SEGMENT) :].strip("/")
        if not name or "/" in name:
            raise ValueError(f"{assignment_id!r} is not a role assignment id")
        return self.local(scope), name
