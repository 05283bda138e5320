"""Managed HSM local RBAC: role definitions and assignments held by the HSM itself, at `/`, `/keys` or `/keys/<name>`.

Not ARM's: ARM neither lists these assignments nor reports them in events, and the HSM decides every data-plane call
from them alone. What the emulator models, after Microsoft's Managed HSM docs (access-control.md, built-in-roles.md,
role-management.md):
- the built-in roles with their real ids and data actions (`Microsoft.KeyVault/managedHsm/...`), kept here rather
  than imported from the app, so a wrong id or action in the app is not hidden by a shared table;
- an assignment applies at its scope and below; a listing at a scope shows the assignments at it and above, never
  below (a listing at `/` does not show key-level grants: a reconciler must list per key scope);
- only direct assignments count: a service principal's group membership is not honoured;
- assignment changes reach authorization after a propagation delay (emulators.rbac_propagation), as ARM's do;
  role definition changes are immediate.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from emulators.arm_ids import is_guid
from emulators.auth import action_matches
from emulators.rbac_propagation import RbacPropagation

PREFIX = "Microsoft.KeyVault/managedHsm"
DEFINITION_ID_PREFIX = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
ASSIGNMENT_ID_PREFIX = "/providers/Microsoft.Authorization/roleAssignments/"

_KEY_MANAGEMENT = (
    "/keys/read/action",
    "/keys/write/action",
    "/keys/rotate/action",
    "/keys/create",
    "/keys/delete",
    "/keys/backup/action",
    "/keys/restore/action",
    "/keys/release/action",
    "/keys/import/action",
)
_KEY_CRYPTO = (
    "/keys/encrypt/action",
    "/keys/decrypt/action",
    "/keys/wrap/action",
    "/keys/unwrap/action",
    "/keys/sign/action",
    "/keys/verify/action",
)
_ROLE_READ = ("/roleAssignments/read/action", "/roleDefinitions/read/action")
_ROLE_MANAGEMENT = (
    *_ROLE_READ,
    "/roleAssignments/write/action",
    "/roleAssignments/delete/action",
    "/roleDefinitions/write/action",
    "/roleDefinitions/delete/action",
)
_SECURITY_DOMAIN = (
    "/securitydomain/download/action",
    "/securitydomain/upload/action",
    "/securitydomain/upload/read",
    "/securitydomain/transferkey/read",
)
_BACKUP = ("/backup/start/action", "/backup/status/action")
_RESTORE = ("/restore/start/action", "/restore/status/action")

# (id, name, description, data actions without the prefix), as built-in-roles.md lists them (ms.date 01/25/2024).
_BUILT_IN: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "a290e904-7015-4bba-90c8-60543313cdb4",
        "Managed HSM Administrator",
        "Security domain, full backup and restore, and role management; no key management.",
        (*_SECURITY_DOMAIN, *_ROLE_MANAGEMENT, *_BACKUP, *_RESTORE),
    ),
    (
        "515eb02d-2335-4d2d-92f2-b1cbdf9c3778",
        "Managed HSM Crypto Officer",
        "Role management, purge or recover deleted keys, export keys; no other key management.",
        (
            "/keys/deletedKeys/read/action",
            "/keys/deletedKeys/recover/action",
            "/keys/deletedKeys/delete",
            *_ROLE_MANAGEMENT,
        ),
    ),
    (
        "21dbd100-6940-42c2-9190-5d6cb909625b",
        "Managed HSM Crypto User",
        "All key management operations except purge or recover deleted keys and export keys.",
        (*_KEY_MANAGEMENT, *_KEY_CRYPTO, *_ROLE_READ),
    ),
    (
        "4bd23610-cdcf-4971-bdee-bdc562cc28e4",
        "Managed HSM Policy Administrator",
        "Create and delete role assignments.",
        _ROLE_MANAGEMENT,
    ),
    (
        "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
        "Managed HSM Crypto Auditor",
        "Read (but not use) key attributes.",
        # The docs' table also marks /keys/deletedKeys/delete for this role; left out as the likely table slip it
        # is (an auditor that can purge contradicts the role's own description).
        ("/keys/read/action", *_ROLE_READ),
    ),
    (
        "33413926-3206-4cdd-b39a-83574fe37a17",
        "Managed HSM Crypto Service Encryption User",
        "Use a key for service encryption.",
        ("/keys/read/action", "/keys/wrap/action", "/keys/unwrap/action"),
    ),
    (
        "21dbd100-6940-42c2-9190-5d6cb909625c",
        "Managed HSM Crypto Service Release User",
        "Release a key to a trusted execution environment.",
        ("/keys/release/action",),
    ),
    (
        "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8",
        "Managed HSM Backup",
        "Single-key or whole-HSM backup.",
        ("/keys/backup/action", *_BACKUP),
    ),
    (
        "6efe6056-5259-49d2-8b3d-d3d73544b20b",
        "Managed HSM Restore",
        "Single-key or whole-HSM restore.",
        ("/keys/restore/action", *_RESTORE),
    ),
)


class RbacError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def normalize_scope(scope: str) -> str | None:
    """`/`, `/keys` or `/keys/<name>` (any case, stray slashes dropped); None for anything else."""
    parts = [p for p in scope.split("/") if p]
    if not parts:
        return "/"
    if parts[0].lower() != "keys" or len(parts) > 2:
        return None
    return "/keys" if len(parts) == 1 else f"/keys/{parts[1]}"


def covers(outer: str, inner: str) -> bool:
    """Whether an assignment at `outer` applies at `inner` (both normalized)."""
    return outer == "/" or inner.lower() == outer.lower() or inner.lower().startswith(outer.lower() + "/")


@dataclass(frozen=True)
class LocalAssignment:
    name: str
    scope: str
    role_guid: str
    principal_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": ASSIGNMENT_ID_PREFIX + self.name,
            "name": self.name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "scope": self.scope,
                "roleDefinitionId": DEFINITION_ID_PREFIX + self.role_guid,
                "principalId": self.principal_id,
            },
        }


@dataclass(frozen=True)
class LocalDefinition:
    guid: str
    role_name: str
    description: str
    role_type: str  # AKVBuiltInRole | CustomRole
    permissions: tuple[dict[str, Any], ...]
    assignable_scopes: tuple[str, ...] = ("/",)

    def allows(self, action: str) -> bool:
        return any(
            any(action_matches(action, p) for p in block.get("dataActions") or ())
            and not any(action_matches(action, p) for p in block.get("notDataActions") or ())
            for block in self.permissions
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": DEFINITION_ID_PREFIX + self.guid,
            "name": self.guid,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": self.role_name,
                "description": self.description,
                "type": self.role_type,
                "permissions": [dict(p) for p in self.permissions],
                "assignableScopes": list(self.assignable_scopes),
            },
        }


def built_in_definitions() -> dict[str, LocalDefinition]:
    return {
        guid: LocalDefinition(
            guid,
            name,
            description,
            "AKVBuiltInRole",
            ({"actions": [], "notActions": [], "dataActions": [PREFIX + a for a in actions], "notDataActions": []},),
        )
        for guid, name, description, actions in _BUILT_IN
    }


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RbacError(400, "BadParameter", f"{field}: expected a list of strings")
    return value


class LocalRbac:
    """One HSM's definitions and assignments, and what its authorization sees (the propagated assignments)."""

    def __init__(self, *, max_seconds: float, seed: int, follow: RbacPropagation[Any] | None = None) -> None:
        """`follow`: ARM's propagation, whose maximum and seed (set through the admin API) this one takes too."""
        self.follow = follow
        self._lock = threading.Lock()
        self.definitions = built_in_definitions()
        self.assignments: dict[str, LocalAssignment] = {}
        self.rbac: RbacPropagation[LocalAssignment] = RbacPropagation(max_seconds=max_seconds, seed=seed)

    # ---- authorization ----------------------------------------------------------------------------------------
    def allows(self, principal_id: str, scope: str, action: str) -> bool:
        """Direct assignments only (no group expansion), as propagated, covering `scope`."""
        principal = principal_id.lower()
        with self._lock:
            effective = list(self.rbac.effective.values())
        for a in effective:
            if a.principal_id.lower() != principal or not covers(a.scope, scope):
                continue
            definition = self.definitions.get(a.role_guid)
            if definition is not None and definition.allows(action):  # a deleted custom role grants nothing
                return True
        return False

    # ---- role assignments -------------------------------------------------------------------------------------
    def list_assignments(self, scope: str) -> list[LocalAssignment]:
        with self._lock:
            return [a for a in self.assignments.values() if covers(a.scope, scope)]

    def get_assignment(self, scope: str, name: str) -> LocalAssignment:
        with self._lock:
            found = self.assignments.get(name.lower())
        if found is None or found.scope.lower() != scope.lower():
            raise RbacError(404, "RoleAssignmentNotFound", f"Requested role assignment '{name}' not found.")
        return found

    def create_assignment(self, scope: str, name: str, body: Any, now: float) -> tuple[LocalAssignment, bool]:
        if not is_guid(name):
            raise RbacError(400, "BadParameter", f"The role assignment name '{name}' is not a valid GUID.")
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise RbacError(400, "BadParameter", "properties: required")
        role_id, principal = props.get("roleDefinitionId"), props.get("principalId")
        if not isinstance(principal, str) or not is_guid(principal):
            raise RbacError(400, "BadParameter", f"properties.principalId: not a GUID ({principal!r})")
        if not isinstance(role_id, str) or not role_id.strip():
            raise RbacError(400, "BadParameter", "properties.roleDefinitionId: required")
        guid = role_id.strip().rstrip("/").rsplit("/", 1)[-1].lower()
        with self._lock:
            if guid not in self.definitions:
                raise RbacError(400, "BadParameter", f"The role definition '{role_id}' does not exist.")
            wanted = LocalAssignment(name.lower(), scope, guid, principal.lower())
            existing = self.assignments.get(name.lower())
            if existing is not None:
                if existing == wanted:
                    return existing, False
                raise RbacError(409, "Conflict", f"The role assignment '{name}' already exists with other values.")
            for a in self.assignments.values():
                if (a.scope.lower(), a.role_guid, a.principal_id) == (scope.lower(), guid, principal.lower()):
                    raise RbacError(409, "RoleAssignmentExists", "The role assignment already exists.")
            self.assignments[wanted.name] = wanted
            self._record(wanted.name, wanted, now)
        return wanted, True

    def delete_assignment(self, scope: str, name: str, now: float) -> LocalAssignment:
        found = self.get_assignment(scope, name)
        with self._lock:
            del self.assignments[found.name]
            self._record(found.name, None, now)
        return found

    def provision(self, assignment: LocalAssignment) -> None:
        """An assignment made when the HSM is provisioned (its initial administrators): in effect at once."""
        with self._lock:
            self.assignments[assignment.name] = assignment
            self.rbac.effective[assignment.name] = assignment

    def _record(self, name: str, value: LocalAssignment | None, now: float) -> None:
        if self.follow is not None:
            self.rbac.max_seconds, self.rbac.seed = self.follow.max_seconds, self.follow.seed
        self.rbac.record(name, value, now)

    def apply_due(self, now: float) -> int:
        with self._lock:
            return self.rbac.apply_due(now)

    # ---- role definitions -------------------------------------------------------------------------------------
    def get_definition(self, name: str) -> LocalDefinition:
        found = self.definitions.get(name.lower())
        if found is None:
            raise RbacError(404, "RoleDefinitionNotFound", f"Requested role definition '{name}' not found.")
        return found

    def put_definition(self, name: str, body: Any) -> LocalDefinition:
        if not is_guid(name):
            raise RbacError(400, "BadParameter", f"The role definition name '{name}' is not a valid GUID.")
        existing = self.definitions.get(name.lower())
        if existing is not None and existing.role_type != "CustomRole":
            raise RbacError(403, "Forbidden", "A built-in role definition cannot be changed.")
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise RbacError(400, "BadParameter", "properties: required")
        blocks = props.get("permissions") or []
        if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
            raise RbacError(400, "BadParameter", "properties.permissions: expected a list of objects")
        permissions = tuple(
            {
                "actions": _strings(b.get("actions"), f"properties.permissions[{i}].actions"),
                "notActions": _strings(b.get("notActions"), f"properties.permissions[{i}].notActions"),
                "dataActions": _strings(b.get("dataActions"), f"properties.permissions[{i}].dataActions"),
                "notDataActions": _strings(b.get("notDataActions"), f"properties.permissions[{i}].notDataActions"),
            }
            for i, b in enumerate(blocks)
        )
        for block in permissions:
            for action in (*block["dataActions"], *block["notDataActions"]):
                if not action.lower().startswith(PREFIX.lower() + "/"):
                    raise RbacError(400, "BadParameter", f"The data action '{action}' is not a Managed HSM action.")
        definition = LocalDefinition(
            name.lower(),
            str(props.get("roleName") or ""),
            str(props.get("description") or ""),
            "CustomRole",
            permissions,
            tuple(_strings(props.get("assignableScopes"), "properties.assignableScopes") or ["/"]),
        )
        with self._lock:
            self.definitions[definition.guid] = definition
        return definition

    def delete_definition(self, name: str) -> LocalDefinition:
        found = self.get_definition(name)
        if found.role_type != "CustomRole":
            raise RbacError(403, "Forbidden", "A built-in role definition cannot be deleted.")
        with self._lock:
            del self.definitions[found.guid]  # its assignments stay, defunct: they grant nothing
        return found

    # ---- persistence ------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "assignments": [asdict(a) for a in self.assignments.values()],
                "custom_roles": [d.to_json() for d in self.definitions.values() if d.role_type == "CustomRole"],
                "propagation": self.rbac.snapshot(asdict),
            }

    def restore(self, data: dict[str, Any]) -> None:
        for role in data.get("custom_roles") or []:
            self.put_definition(role["name"], role)
        with self._lock:
            self.assignments = {a["name"]: LocalAssignment(**a) for a in data.get("assignments") or []}
            if data.get("propagation") is not None:
                self.rbac.restore(data["propagation"], lambda item: LocalAssignment(**item))
            else:
                self.rbac.load(self.assignments)

    def reset(self) -> None:
        with self._lock:
            self.definitions = built_in_definitions()
            self.assignments = {}
            self.rbac.reset()
