"""Built-in Azure roles that grant data access to Key Vault keys, as the app understands them.

The emulators keep their own copy on purpose (they model Azure, not our assumptions about Azure): a wrong id here
would then fail a contract test instead of passing silently.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_DATA_PREFIX = "Microsoft.KeyVault/vaults/keys/"


@dataclass(frozen=True)
class BuiltInRole:
    guid: str
    name: str
    key_data_actions: frozenset[str]  # short names: read, wrap, unwrap, ... ("*" for all)

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
DATA_ACCESS_ADMINISTRATOR = BuiltInRole(
    "8b54135c-b56d-4d72-a534-26097cfdc8d8", "Key Vault Data Access Administrator", frozenset()
)

BUILT_IN_ROLES: dict[str, BuiltInRole] = {
    r.guid: r
    for r in (
        CRYPTO_SERVICE_ENCRYPTION_USER,
        CRYPTO_USER,
        CRYPTO_OFFICER,
        ADMINISTRATOR,
        READER,
        DATA_ACCESS_ADMINISTRATOR,
    )
}
ROLES_BY_NAME: dict[str, BuiltInRole] = {r.name.lower(): r for r in BUILT_IN_ROLES.values()}

# Roles that let a principal use key material (wrap/unwrap/decrypt/sign): what least privilege must police.
KEY_USE_ACTIONS = frozenset({"wrap", "unwrap", "encrypt", "decrypt", "sign", "verify"})


def role_by_id(role_definition_id: str) -> BuiltInRole | None:
    """Accepts a bare GUID or a full roleDefinitions resource id."""
    return BUILT_IN_ROLES.get(role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower())


def role_definition_id(subscription_id: str, role: BuiltInRole) -> str:
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role.guid}"


def grants_key_use(role_definition_id_or_guid: str) -> bool:
    """Unknown (custom) roles count as granting use: better a finding to review than a silent gap."""
    role = role_by_id(role_definition_id_or_guid)
    if role is None:
        return True
    return any(role.grants(a) for a in KEY_USE_ACTIONS)
