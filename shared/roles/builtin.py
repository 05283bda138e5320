"""Built-in Azure roles the app names: in the inventory (the role a consumer should hold) and when it grants one.

Names, ids, and for the Key Vault data roles the key operations Microsoft documents, which only the inventory's
offline validation uses (is the role named for a consumer fit for it?). What a role lets its holder do in the cloud
is never judged from here: the access judgement reads each role's definition through ARM (shared.roles.catalog), so a
custom role or a changed built-in is judged by what it really grants. The emulators keep their own definitions on
purpose (they model Azure, not our assumptions about it).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.arm_ids import is_guid, role_definition_guid, subscription_role_definition_id


@dataclass(frozen=True)
class BuiltInRole:
    guid: str
    name: str
    key_data_actions: frozenset[str] = frozenset()  # documented short names: read, wrap, unwrap, ... ("*" for all)

    def grants(self, action: str) -> bool:
        return "*" in self.key_data_actions or action in self.key_data_actions


CRYPTO_SERVICE_ENCRYPTION_USER = BuiltInRole(
    "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "Key Vault Crypto Service Encryption User",
    frozenset({"read", "wrap", "unwrap"}),
)
CRYPTO_USER = BuiltInRole(
    "12338af0-0e69-4776-bea7-57ae8d297424",
    "Key Vault Crypto User",
    frozenset({"read", "update", "backup", "encrypt", "decrypt", "wrap", "unwrap", "sign", "verify"}),
)
CRYPTO_OFFICER = BuiltInRole("14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "Key Vault Crypto Officer", frozenset({"*"}))
ADMINISTRATOR = BuiltInRole("00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator", frozenset({"*"}))
READER = BuiltInRole("21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader", frozenset({"readmetadata"}))
DATA_ACCESS_ADMINISTRATOR = BuiltInRole("8b54135c-b56d-4d72-a534-26097cfdc8d8", "Key Vault Data Access Administrator")
OWNER = BuiltInRole("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner")
CONTRIBUTOR = BuiltInRole("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor")
ARM_READER = BuiltInRole("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader")
USER_ACCESS_ADMINISTRATOR = BuiltInRole("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator")

BUILT_IN_ROLES: dict[str, BuiltInRole] = {
    r.guid: r
    for r in (
        CRYPTO_SERVICE_ENCRYPTION_USER,
        CRYPTO_USER,
        CRYPTO_OFFICER,
        ADMINISTRATOR,
        READER,
        DATA_ACCESS_ADMINISTRATOR,
        OWNER,
        CONTRIBUTOR,
        ARM_READER,
        USER_ACCESS_ADMINISTRATOR,
    )
}
ROLES_BY_NAME: dict[str, BuiltInRole] = {r.name.lower(): r for r in BUILT_IN_ROLES.values()}


def role_by_id(role_definition_id: str) -> BuiltInRole | None:
    """A bare GUID or a full roleDefinitions resource id; None for anything that is not a known built-in."""
    text = role_definition_id.strip()
    if not text or not is_guid(text.rstrip("/").rsplit("/", 1)[-1]):
        return None
    return BUILT_IN_ROLES.get(role_definition_guid(text))


def role_definition_id(subscription_id: str, role: BuiltInRole) -> str:
    return subscription_role_definition_id(subscription_id, role.guid)
