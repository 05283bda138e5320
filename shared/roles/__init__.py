"""Azure RBAC as the app reads it: Key Vault's built-in roles, what a role definition permits, and a cache of them.

shared.roles.builtin names the built-in roles the inventory may use; shared.roles.definitions says which data actions
are key use and what each consumer needs; shared.roles.catalog reads definitions through ARM once per role.
"""

from shared.roles.builtin import (
    CRYPTO_SERVICE_ENCRYPTION_USER,
    ROLES_BY_NAME,
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
    "CONSUMER_NEEDS",
    "CRYPTO_SERVICE_ENCRYPTION_USER",
    "KEYS",
    "KEY_DATA_ACTIONS",
    "KEY_USE",
    "ROLES_BY_NAME",
    "BuiltInRole",
    "RoleCatalog",
    "RoleDefinition",
    "access_policy_key_operations",
    "definitions_for",
    "role_by_id",
    "role_definition_from_arm",
    "role_definition_id",
]
