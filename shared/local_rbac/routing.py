"""One AccessControl port over ARM and every Managed HSM the inventory names, chosen by scope.

The handlers call `list_assignments(key.scope)` and friends without knowing where a key lives; this sends a call
about a scope within a Managed HSM to that HSM's local RBAC adapter and every other to ARM's. Role definitions go to
the HSM when the id is local RBAC's (`Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/<guid>`,
how HSM assignments name their roles) or a Managed HSM built-in's GUID, and to ARM otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from shared.arm_ids import role_definition_guid
from shared.errors import NotFound
from shared.local_rbac.scopes import HsmScopes, assignment_scope
from shared.model import RoleAssignment
from shared.ports import AccessControl
from shared.roles.builtin import HSM_ROLES, is_hsm_role_definition_id
from shared.roles.definitions import RoleDefinition

_HSM_BUILT_IN = frozenset(r.guid for r in HSM_ROLES)


class RoutedAccessControl:
    """`arm`: the ARM adapter; `hsms`: Managed HSM resource id -> its local RBAC adapter (built lazily by the caller
    if it likes: any AccessControl works)."""

    def __init__(self, arm: AccessControl, hsms: Mapping[str, AccessControl]) -> None:
        self._arm = arm
        self._hsms = [(HsmScopes(rid), access) for rid, access in hsms.items()]

    def _for(self, scope: str) -> AccessControl:
        for scopes, access in self._hsms:
            if scopes.covers(scope):
                return access
        return self._arm

    def list_assignments(self, scope: str) -> list[RoleAssignment]:
        return self._for(scope).list_assignments(scope)

    def create_assignment(
        self, scope: str, role_definition_id: str, principal_id: str, principal_type: str, name: str | None = None
    ) -> RoleAssignment:
        return self._for(scope).create_assignment(scope, role_definition_id, principal_id, principal_type, name)

    def delete_assignment(self, assignment_id: str) -> bool:
        return self._for(assignment_scope(assignment_id)).delete_assignment(assignment_id)

    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        local = is_hsm_role_definition_id(role_definition_id)
        with contextlib.suppress(ValueError):
            local = local or role_definition_guid(role_definition_id) in _HSM_BUILT_IN
        if not local or not self._hsms:
            return self._arm.get_role_definition(role_definition_id)
        missing: NotFound | None = None
        for _, access in self._hsms:  # a custom role lives in one HSM: ask each until one has it
            try:
                return access.get_role_definition(role_definition_id)
            except NotFound as exc:
                missing = exc
        assert missing is not None
        raise missing

    def close(self) -> None:
        for access in (self._arm, *(a for _, a in self._hsms)):
            closer: Any = getattr(access, "close", None)
            if closer is not None:
                closer()
