"""Azure RBAC as the app reads it: Key Vault's built-in roles, what a role definition permits, and a cache of them.

shared.roles.builtin names the built-in roles the inventory may use; shared.roles.definitions says which data actions
are key use and what each consumer needs; shared.roles.catalog reads definitions through ARM once per role.
"""

from shared.roles.builtin import (
    ADMINISTRATOR,
    ARM_READER,
    CONTRIBUTOR,
    CRYPTO_OFFICER,
    CRYPTO_SERVICE_ENCRYPTION_USER,
    CRYPTO_USER,
    DATA_ACCESS_ADMINISTRATOR,
    OWNER,
    READER,
    ROLES_BY_NAME,
    USER_ACCESS_ADMINISTRATOR,
    BuiltInRole,
    role_by_id,
    role_definition_id,
)
from shared.roles.catalog import RoleCatalog, definitions_for
from shared.roles.definitions import (
    CONSUMER_NEEDS,
    KEY_DATA_ACTIONS,
    KEY_USE,
    KEYS,
    RoleDefinition,
    access_policy_key_operations,
    role_definition_from_arm,
)

__all__ = [
    "ADMINISTRATOR",
    "ARM_READER",
    "CONSUMER_NEEDS",
    "CONTRIBUTOR",
    "CRYPTO_OFFICER",
    "CRYPTO_SERVICE_ENCRYPTION_USER",
    "CRYPTO_USER",
    "DATA_ACCESS_ADMINISTRATOR",
    "KEYS",
    "KEY_DATA_ACTIONS",
    "KEY_USE",
    "OWNER",
    "READER",
    "ROLES_BY_NAME",
    "USER_ACCESS_ADMINISTRATOR",
    "BuiltInRole",
    "RoleCatalog",
    "RoleDefinition",
    "access_policy_key_operations",
    "definitions_for",
    "role_by_id",
    "role_definition_from_arm",
    "role_definition_id",
]
