"""The parts of a Key Vault's ARM resource that decide who can use its keys and whether a key can be lost.

Read through ARM (the data plane does not expose them): the permission model (RBAC or access policies), the access
policies themselves, soft delete and purge protection. A vault on access policies ignores data-role assignments,
so the access judgement must evaluate these instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.roles.definitions import access_policy_key_operations

# What Microsoft documents for keys that protect a MySQL flexible server (and what we hold every vault to).
REQUIRED_RETENTION_DAYS = 90


@dataclass(frozen=True)
class AccessPolicyEntry:
    """One entry of `properties.accessPolicies`: an object id and the key permissions it holds."""

    object_id: str  # lower case
    tenant_id: str
    key_permissions: tuple[str, ...]
    application_id: str | None = None

    @property
    def key_operations(self) -> frozenset[str]:
        return access_policy_key_operations(self.key_permissions)


@dataclass(frozen=True)
class VaultSettings:
    resource_id: str
    rbac_authorization: bool
    soft_delete: bool
    soft_delete_retention_days: int | None
    purge_protection: bool
    access_policies: tuple[AccessPolicyEntry, ...] = ()


def _flag(props: Mapping[str, Any], name: str, default: bool) -> bool:
    value = props.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"properties.{name}: not a boolean ({type(value).__name__})")
    return value


def vault_settings_from_arm(document: Mapping[str, Any]) -> VaultSettings:
    """Parse a `Microsoft.KeyVault/vaults` resource as ARM returns it.

    Absent flags take the meaning Azure gives them: soft delete is on unless switched off (it can no longer be), a
    retention of 90 days, purge protection off, and no RBAC unless the vault says so (older vaults omit the flag and
    authorize from access policies). Raises ValueError naming the field when the document is not a vault.
    """
    props = document.get("properties")
    if not isinstance(props, Mapping):
        raise ValueError("properties: missing")
    retention = props.get("softDeleteRetentionInDays", REQUIRED_RETENTION_DAYS)
    if retention is not None and (not isinstance(retention, int) or isinstance(retention, bool)):
        raise ValueError("properties.softDeleteRetentionInDays: not a number of days")
    policies = []
    for i, entry in enumerate(props.get("accessPolicies") or []):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("objectId"), str):
            raise ValueError(f"properties.accessPolicies[{i}].objectId: missing")
        keys = (entry.get("permissions") or {}).get("keys") or []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"properties.accessPolicies[{i}].permissions.keys: not a list of strings")
        policies.append(
            AccessPolicyEntry(
                object_id=entry["objectId"].lower(),
                tenant_id=str(entry.get("tenantId") or ""),
                key_permissions=tuple(keys),
                application_id=entry.get("applicationId") or None,
            )
        )
    managed_hsm = str(document.get("type") or "").lower() == "microsoft.keyvault/managedhsms"
    return VaultSettings(
        resource_id=str(document.get("id") or ""),
        # A Managed HSM has no access policies: its local RBAC always decides (and has no flag for it).
        rbac_authorization=managed_hsm or _flag(props, "enableRbacAuthorization", False),
        soft_delete=_flag(props, "enableSoftDelete", True),
        soft_delete_retention_days=retention,
        purge_protection=_flag(props, "enablePurgeProtection", False),
        access_policies=tuple(policies),
    )
