"""Key Vault's access-policy permission model: what a vault with `enableRbacAuthorization: false` authorizes from.

Such a vault ignores role assignments for data-plane calls and asks its `accessPolicies` instead: an entry for the
caller's tenant and object id whose `permissions.keys` lists the operation's permission (case-insensitive; "all"
grants every key permission). A denial is the service's 403 Forbidden with inner code AccessDenied, naming the caller
and the missing permission. This matters to the app because on this model anyone with Contributor on the vault can
write themselves a policy: the emulator must let that access actually work, and RBAC revocations stop mattering.
"""

from __future__ import annotations

from typing import Any

# Key Vault operation (emulators.keyvault.Operation.name) -> the access-policy key permission it needs.
KEY_PERMISSIONS = {
    "listkeys": "list",
    "getkey": "get",
    "listversions": "list",
    "createkey": "create",
    "rotatekey": "rotate",
    "updatekey": "update",
    "deletekey": "delete",
    "getrotationpolicy": "getrotationpolicy",
    "setrotationpolicy": "setrotationpolicy",
    "wrapkey": "wrapKey",
    "unwrapkey": "unwrapKey",
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "listdeletedkeys": "list",
    "getdeletedkey": "get",
    "recoverdeletedkey": "recover",
    "purgedeletedkey": "purge",
}


def uses_access_policies(vault_properties: dict[str, Any] | None) -> bool:
    return bool(vault_properties) and vault_properties.get("enableRbacAuthorization") is False  # type: ignore[union-attr]


def key_permissions(vault_properties: dict[str, Any], tenant_id: str, principal_id: str) -> set[str]:
    """The lower-cased key permissions the vault's access policies give the principal (compound identities, i.e.
    entries with an applicationId, apply only to that application acting for the user, so they grant nothing here)."""
    granted: set[str] = set()
    for policy in vault_properties.get("accessPolicies") or []:
        if not isinstance(policy, dict) or policy.get("applicationId"):
            continue
        if str(policy.get("tenantId", "")).lower() != tenant_id.lower():
            continue
        if str(policy.get("objectId", "")).lower() != principal_id.lower():
            continue
        granted |= {str(p).lower() for p in (policy.get("permissions") or {}).get("keys") or []}
    return granted


def is_allowed(vault_properties: dict[str, Any], tenant_id: str, principal_id: str, operation: str) -> bool:
    needed = KEY_PERMISSIONS.get(operation)
    if needed is None:
        return False
    granted = key_permissions(vault_properties, tenant_id, principal_id)
    return "all" in granted or needed.lower() in granted


def denial_message(vault_name: str, location: str, tenant_id: str, principal_id: str, operation: str) -> str:
    """Key Vault's wording for an access-policy denial."""
    permission = KEY_PERMISSIONS.get(operation, operation)
    return (
        f"The user, group or application 'oid={principal_id};iss=https://sts.windows.net/{tenant_id}/' does not have "
        f"keys {permission} permission on key vault '{vault_name};location={location}'. For help resolving this "
        "issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
    )
