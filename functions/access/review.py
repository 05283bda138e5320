"""Who can use a managed key, judged from what Azure would actually let them do, and how that differs from the
inventory.

Grants come from role assignments (each judged by its role's definition, read through ARM) on a vault that uses RBAC,
or from the vault's access policies on one that does not: Key Vault honours one model at a time, so judging the
other would report access nobody has and miss access somebody has. Control-plane roles (Owner, Contributor, Reader,
User Access Administrator) grant no key use and raise nothing here.

Groups hide their members (Microsoft Graph would be needed to expand them), so a group's grant is its own finding,
and a consumer whose only possible grant is through a group is "unverified", never "missing": the report must not
claim an outage it cannot see, nor hide one behind a group it cannot open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.arm_ids import normalize_scope
from shared.errors import CmkError
from shared.findings import FindingCode
from shared.model import PrincipalType, RoleAssignment
from shared.ports import RoleDefinitions
from shared.roles.definitions import CONSUMER_NEEDS, KEY_USE
from shared.vault_settings import VaultSettings

GROUP_TYPES = frozenset({PrincipalType.GROUP.value.lower(), PrincipalType.FOREIGN_GROUP.value.lower()})
AddFinding = Callable[..., None]


@dataclass(frozen=True)
class Grant:
    """What one principal may do with the key through one assignment or access policy. `operations` is None when the
    role could not be read: unknown, which is neither "nothing" nor "everything"."""

    principal_id: str  # lower case
    principal_type: str
    operations: frozenset[str] | None
    role: str
    scope: str
    inherited: bool
    assignment_id: str | None = None

    @property
    def is_group(self) -> bool:
        return self.principal_type.lower() in GROUP_TYPES

    @property
    def uses_key(self) -> bool:
        return self.operations is not None and bool(self.operations & KEY_USE)

    def detail(self) -> dict[str, Any]:
        return {
            "principal_id": self.principal_id,
            "principal_type": self.principal_type,
            "role": self.role,
            "scope": self.scope,
            "assignment_id": self.assignment_id,
            "inherited": self.inherited,
            "operations": sorted(self.operations) if self.operations is not None else None,
        }


def grants_from_assignments(
    managed: Any, assignments: list[RoleAssignment], roles: RoleDefinitions, add: AddFinding
) -> list[Grant]:
    """Judge each assignment by its role's definition; a missing definition grants nothing, an unreadable one is
    unknown (and reported)."""
    key_scope = normalize_scope(managed.scope)
    grants = []
    for a in assignments:
        inherited = normalize_scope(a.scope) != key_scope
        try:
            definition = roles.get(a.role_definition_id)
        except (CmkError, ValueError) as exc:
            add(
                FindingCode.ROLE_UNREADABLE,
                f"role {a.role_guid} held by {a.principal_id} could not be read: {getattr(exc, 'code', exc)}",
                principal_id=a.principal_id,
                assignment_id=a.id,
                role_definition_id=a.role_definition_id,
            )
            operations, role_name = None, f"role {a.role_guid}"
        else:
            if definition is None:
                add(
                    FindingCode.ROLE_DEFINITION_MISSING,
                    f"assignment {a.name} names role {a.role_guid}, which does not exist",
                    principal_id=a.principal_id,
                    assignment_id=a.id,
                    role_definition_id=a.role_definition_id,
                )
                continue
            operations, role_name = definition.key_operations(), definition.name
        grants.append(Grant(a.principal_id.lower(), a.principal_type, operations, role_name, a.scope, inherited, a.id))
    return grants


def grants_from_access_policies(managed: Any, settings: VaultSettings, inventory: Any) -> list[Grant]:
    """An access policy applies to every key in its vault. It carries no principal type; the inventory knows the
    break-glass principals' types, everything else is taken as it is (an object id)."""
    types = {p.principal_id: p.principal_type for p in inventory.break_glass}
    return [
        Grant(
            p.object_id,
            types.get(p.object_id, "Unknown"),
            p.key_operations,
            "access policy",
            managed.vault.resource_id,
            inherited=True,
        )
        for p in settings.access_policies
    ]


def review_grants(managed: Any, inventory: Any, grants: list[Grant], add: AddFinding) -> None:
    identity = managed.identity.principal_id.lower()
    break_glass = {p.principal_id.lower() for p in inventory.break_glass}
    app_identity = (inventory.app_identity or "").lower()
    consumer_ops: set[str] = set()
    for g in grants:
        if g.principal_id == identity:
            if g.operations is not None:
                consumer_ops |= g.operations
                _review_consumer_grant(managed, g, add)
            continue
        if not g.uses_key or g.principal_id == app_identity:
            continue
        if g.principal_id in break_glass:
            add(FindingCode.BREAK_GLASS_ACCESS, f"break-glass principal {g.principal_id} holds {g.role}", **g.detail())
        elif g.is_group:
            add(
                FindingCode.ACCESS_VIA_GROUP,
                f"group {g.principal_id} holds {g.role} on key {managed.name}: its members (not visible without "
                "Microsoft Graph) can use the key",
                **g.detail(),
            )
        else:
            add(
                FindingCode.ACCESS_EXTRA,
                f"principal {g.principal_id} holds {g.role} on key {managed.name} but is not its consumer",
                **g.detail(),
            )
    missing = CONSUMER_NEEDS - consumer_ops
    if missing:
        _review_missing(managed, grants, identity, sorted(missing), add)


def _review_consumer_grant(managed: Any, g: Grant, add: AddFinding) -> None:
    assert g.operations is not None
    beyond = sorted(g.operations - CONSUMER_NEEDS)
    if beyond and g.uses_key:
        add(
            FindingCode.ACCESS_TOO_BROAD,
            f"{managed.service} identity holds {g.role}, which also allows {beyond}; it needs only read, wrap, unwrap",
            **g.detail(),
        )
    elif g.inherited and g.uses_key:
        add(
            FindingCode.ACCESS_TOO_BROAD,
            f"{managed.service} identity's grant is at {g.scope}, wider than the key: it reaches other keys",
            **g.detail(),
        )


def _review_missing(managed: Any, grants: list[Grant], identity: str, missing: list[str], add: AddFinding) -> None:
    """The consumer lacks `missing` directly. A group that has them, or a role nobody could read, might still cover
    it: say so rather than claim an outage."""
    maybe = [
        g
        for g in grants
        if (g.principal_id == identity and g.operations is None)
        or (g.is_group and (g.operations is None or set(missing) <= g.operations))
    ]
    if maybe:
        add(
            FindingCode.ACCESS_UNVERIFIED,
            f"{managed.service} identity {managed.identity.principal_id} has no direct grant of {missing} on key "
            f"{managed.name}; {len(maybe)} grant(s) that may cover it cannot be verified (group membership needs "
            "Microsoft Graph; an unreadable role is unknown)",
            principal_id=managed.identity.principal_id,
            missing=missing,
            possible_grants=[g.detail() for g in maybe],
        )
        return
    add(
        FindingCode.ACCESS_MISSING,
        f"{managed.service} identity {managed.identity.principal_id} cannot {'/'.join(missing)} "
        f"with key {managed.name}",
        principal_id=managed.identity.principal_id,
        missing=missing,
    )
