"""What an Azure role definition lets its holder do to a Key Vault key, evaluated the way ARM evaluates it.

The judgement of who can use a key must come from the definition ARM holds, not from a table of role names: a custom
role can grant wrap/unwrap under any name, and Owner or Contributor grant none (they are control-plane roles). A
permission block allows the data actions its `dataActions` match minus those its `notDataActions` match; a role
allows what any of its blocks allows. Patterns are case-insensitive and `*` matches any run of characters, '/'
included (so `Microsoft.KeyVault/vaults/*` covers every key action).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.arm_ids import role_definition_guid

KEYS = "Microsoft.KeyVault/vaults/keys/"
ROTATION_POLICIES = "Microsoft.KeyVault/vaults/keyrotationpolicies/"
DELETED_KEYS = "Microsoft.KeyVault/vaults/deletedKeys/"

# Key operations by the short names the report uses, and the data action Key Vault checks for each.
KEY_DATA_ACTIONS: dict[str, str] = {
    "read": KEYS + "read",
    "wrap": KEYS + "wrap/action",
    "unwrap": KEYS + "unwrap/action",
    "encrypt": KEYS + "encrypt/action",
    "decrypt": KEYS + "decrypt/action",
    "sign": KEYS + "sign/action",
    "verify": KEYS + "verify/action",
    "release": KEYS + "release/action",
    "create": KEYS + "create/action",
    "update": KEYS + "update/action",
    "import": KEYS + "import/action",
    "delete": KEYS + "delete",
    "backup": KEYS + "backup/action",
    "restore": KEYS + "restore/action",
    "rotate": KEYS + "rotate/action",
    "recover": DELETED_KEYS + "recover/action",
    "purge": DELETED_KEYS + "delete",
    "getrotationpolicy": ROTATION_POLICIES + "read",
    "setrotationpolicy": ROTATION_POLICIES + "write",
}

# The same operations as Managed HSM local RBAC names them (its data actions differ from a vault's: `keys/write/action`
# for update, `keys/create` without `/action`).
HSM_KEYS = "Microsoft.KeyVault/managedHsm/keys/"
HSM_KEY_DATA_ACTIONS: dict[str, str] = {
    "read": HSM_KEYS + "read/action",
    "wrap": HSM_KEYS + "wrap/action",
    "unwrap": HSM_KEYS + "unwrap/action",
    "encrypt": HSM_KEYS + "encrypt/action",
    "decrypt": HSM_KEYS + "decrypt/action",
    "sign": HSM_KEYS + "sign/action",
    "verify": HSM_KEYS + "verify/action",
    "release": HSM_KEYS + "release/action",
    "create": HSM_KEYS + "create",
    "update": HSM_KEYS + "write/action",
    "import": HSM_KEYS + "import/action",
    "delete": HSM_KEYS + "delete",
    "backup": HSM_KEYS + "backup/action",
    "restore": HSM_KEYS + "restore/action",
    "rotate": HSM_KEYS + "rotate/action",
    "recover": HSM_KEYS + "deletedKeys/recover/action",
    "purge": HSM_KEYS + "deletedKeys/delete",
    # No entries for the rotation policy: a Managed HSM reads it under keys/read/action and writes it under
    # keys/write/action, so on an HSM it is part of `read` and `update`, not an extra a consumer could be said to hold.
}

# Operations that use the key's material (or hand it out): what least privilege polices.
KEY_USE = frozenset({"wrap", "unwrap", "encrypt", "decrypt", "sign", "verify", "release"})
# What a consumer service needs, and all it should have: read the key, wrap and unwrap its DEK.
CONSUMER_NEEDS = frozenset({"read", "wrap", "unwrap"})


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE)


def action_matches(pattern: str, action: str) -> bool:
    return _compiled(pattern.strip()).fullmatch(action) is not None


@dataclass(frozen=True)
class Permission:
    """One permission block of a role definition."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def allows_data_action(self, action: str) -> bool:
        return any(action_matches(p, action) for p in self.data_actions) and not any(
            action_matches(p, action) for p in self.not_data_actions
        )


@dataclass(frozen=True)
class RoleDefinition:
    """A role definition as ARM serves it. `guid` is the definition's name, the part every assignment ends with."""

    guid: str
    name: str
    role_type: str  # BuiltInRole | CustomRole
    permissions: tuple[Permission, ...] = ()

    def allows_data_action(self, action: str) -> bool:
        return any(p.allows_data_action(action) for p in self.permissions)

    def key_operations(self) -> frozenset[str]:
        """The key operations (short names, see KEY_DATA_ACTIONS) this role allows on a key in its scope: a vault's
        data actions or a Managed HSM's (a role definition lives in one or the other, so at most one set matches)."""
        return frozenset(
            op
            for op, action in KEY_DATA_ACTIONS.items()
            if self.allows_data_action(action)
            or (op in HSM_KEY_DATA_ACTIONS and self.allows_data_action(HSM_KEY_DATA_ACTIONS[op]))
        )


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field}: not a list of strings")
    return tuple(value)


def role_definition_from_arm(document: Mapping[str, Any]) -> RoleDefinition:
    """Parse ARM's roleDefinitions JSON (`{"id", "name", "properties": {"roleName", "type", "permissions"}}`).

    Raises ValueError naming the field when the document is not a role definition; callers treat that as an
    unreadable role, never as one that grants nothing.
    """
    props = document.get("properties")
    if not isinstance(props, Mapping):
        raise ValueError("properties: missing")
    guid = role_definition_guid(str(document.get("name") or document.get("id") or ""))
    blocks = props.get("permissions")
    if not isinstance(blocks, list):
        raise ValueError("properties.permissions: not a list")
    permissions = []
    for i, block in enumerate(blocks):
        if not isinstance(block, Mapping):
            raise ValueError(f"properties.permissions[{i}]: not an object")
        permissions.append(
            Permission(
                actions=_strings(block.get("actions"), f"properties.permissions[{i}].actions"),
                not_actions=_strings(block.get("notActions"), f"properties.permissions[{i}].notActions"),
                data_actions=_strings(block.get("dataActions"), f"properties.permissions[{i}].dataActions"),
                not_data_actions=_strings(block.get("notDataActions"), f"properties.permissions[{i}].notDataActions"),
            )
        )
    return RoleDefinition(
        guid=guid,
        name=str(props.get("roleName") or guid),
        role_type=str(props.get("type") or props.get("roleType") or "CustomRole"),
        permissions=tuple(permissions),
    )


# Key permissions of a vault access policy (the older permission model) -> the report's short names.
ACCESS_POLICY_KEY_PERMISSIONS: dict[str, frozenset[str]] = {
    "get": frozenset({"read"}),
    "list": frozenset({"read"}),
    "wrapkey": frozenset({"wrap"}),
    "unwrapkey": frozenset({"unwrap"}),
    "encrypt": frozenset({"encrypt"}),
    "decrypt": frozenset({"decrypt"}),
    "sign": frozenset({"sign"}),
    "verify": frozenset({"verify"}),
    "release": frozenset({"release"}),
    "create": frozenset({"create"}),
    "update": frozenset({"update"}),
    "import": frozenset({"import"}),
    "delete": frozenset({"delete"}),
    "backup": frozenset({"backup"}),
    "restore": frozenset({"restore"}),
    "rotate": frozenset({"rotate"}),
    "recover": frozenset({"recover"}),
    "purge": frozenset({"purge"}),
    "getrotationpolicy": frozenset({"getrotationpolicy"}),
    "setrotationpolicy": frozenset({"setrotationpolicy"}),
    "all": frozenset(KEY_DATA_ACTIONS),
}


def access_policy_key_operations(permissions: Iterable[str]) -> frozenset[str]:
    """The operations an access policy's `permissions.keys` list allows (case-insensitive, as Key Vault reads it)."""
    granted: set[str] = set()
    for permission in permissions:
        granted |= ACCESS_POLICY_KEY_PERMISSIONS.get(permission.strip().lower(), frozenset())
    return frozenset(granted)
