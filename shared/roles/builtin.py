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
    # A Managed HSM local RBAC role: assigned on the HSM's data plane (scopes /, /keys, /keys/<name>), never through
    # ARM; a Key Vault key cannot name one, nor a Managed HSM key a Key Vault role.
    managed_hsm: bool = False

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

# Managed HSM local RBAC's built-in roles (learn.microsoft.com/azure/key-vault/managed-hsm/built-in-roles): their own
# ids, and key operations only for the roles a consumer could be given. Administrator and Crypto Officer use no key
# material but manage role assignments (so they can grant themselves any key use): the compliance report lists who
# holds them at `/`.
HSM_ADMINISTRATOR = BuiltInRole("a290e904-7015-4bba-90c8-60543313cdb4", "Managed HSM Administrator", managed_hsm=True)
HSM_CRYPTO_OFFICER = BuiltInRole(
    "515eb02d-2335-4d2d-92f2-b1cbdf9c3778", "Managed HSM Crypto Officer", frozenset({"purge", "recover"}), True
)
HSM_CRYPTO_USER = BuiltInRole(
    "21dbd100-6940-42c2-9190-5d6cb909625b",
    "Managed HSM Crypto User",
    frozenset({"read", "update", "create", "delete", "rotate", "backup", "restore", "release", "import"})
    | frozenset({"encrypt", "decrypt", "wrap", "unwrap", "sign", "verify"}),
    True,
)
HSM_POLICY_ADMINISTRATOR = BuiltInRole(
    "4bd23610-cdcf-4971-bdee-bdc562cc28e4", "Managed HSM Policy Administrator", managed_hsm=True
)
HSM_CRYPTO_AUDITOR = BuiltInRole(
    "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3", "Managed HSM Crypto Auditor", frozenset({"read"}), True
)
HSM_CRYPTO_SERVICE_ENCRYPTION_USER = BuiltInRole(
    "33413926-3206-4cdd-b39a-83574fe37a17",
    "Managed HSM Crypto Service Encryption User",
    frozenset({"read", "wrap", "unwrap"}),
    True,
)
HSM_ROLES = (
    HSM_ADMINISTRATOR,
    HSM_CRYPTO_OFFICER,
    HSM_CRYPTO_USER,
    HSM_POLICY_ADMINISTRATOR,
    HSM_CRYPTO_AUDITOR,
    HSM_CRYPTO_SERVICE_ENCRYPTION_USER,
)
# Roles that can write role assignments at the HSM: whoever holds one at `/` can give anyone any key use.
HSM_ROLE_MANAGERS = frozenset({HSM_ADMINISTRATOR.guid, HSM_CRYPTO_OFFICER.guid, HSM_POLICY_ADMINISTRATOR.guid})

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
        *HSM_ROLES,
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
    """The id an assignment names the role by: ARM's subscription-scoped id, or for a Managed HSM role the id local
    RBAC uses (`Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/<guid>`)."""
    if role.managed_hsm:
        return hsm_role_definition_id(role.guid)
    return subscription_role_definition_id(subscription_id, role.guid)


HSM_ROLE_DEFINITION_PREFIX = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"


def hsm_role_definition_id(guid: str) -> str:
    """How Managed HSM local RBAC names a role definition (built-in or custom) in assignments and answers."""
    return HSM_ROLE_DEFINITION_PREFIX + guid.lower()


def is_hsm_role_definition_id(role_definition_id: str) -> bool:
    return role_definition_id.strip().lstrip("/").lower().startswith(HSM_ROLE_DEFINITION_PREFIX.lower())
