"""What a key's vault must be for the key to be safe: RBAC, soft delete with 90 days' retention, purge protection.

A vault on access policies lets anyone with Contributor on it grant themselves key access, and without soft delete or
purge protection one mistaken delete loses every DEK the key protects. Microsoft documents the last two as hard
requirements for MySQL flexible server CMK; we hold every managed vault to them.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.findings import FindingCode
from shared.vault_settings import REQUIRED_RETENTION_DAYS, VaultSettings

AddFinding = Callable[..., None]


def review_vault(vault_name: str, settings: VaultSettings, add: AddFinding) -> None:
    if not settings.rbac_authorization:
        add(
            FindingCode.VAULT_ACCESS_POLICY_MODEL,
            f"vault {vault_name} authorizes from access policies (enableRbacAuthorization is false): role "
            "assignments are ignored, and its access policies are judged instead",
            vault=settings.resource_id,
            access_policies=len(settings.access_policies),
        )
    if not settings.soft_delete:
        add(
            FindingCode.VAULT_SOFT_DELETE_DISABLED,
            f"vault {vault_name} has soft delete off",
            vault=settings.resource_id,
        )
    elif (settings.soft_delete_retention_days or 0) < REQUIRED_RETENTION_DAYS:
        add(
            FindingCode.VAULT_RETENTION_TOO_SHORT,
            f"vault {vault_name} keeps deleted keys {settings.soft_delete_retention_days} days; "
            f"{REQUIRED_RETENTION_DAYS} are required",
            vault=settings.resource_id,
            retention_days=settings.soft_delete_retention_days,
        )
    if not settings.purge_protection:
        add(
            FindingCode.VAULT_PURGE_PROTECTION_DISABLED,
            f"vault {vault_name} has purge protection off",
            vault=settings.resource_id,
        )
