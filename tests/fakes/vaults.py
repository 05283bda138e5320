"""In-memory Key Vault resources as ARM reports them: permission model, access policies, soft delete, purge
protection. A vault nobody registered is NotFound, as ARM answers for a missing resource."""

from __future__ import annotations

import dataclasses

from shared.arm_ids import normalize_scope
from shared.errors import NotFound
from shared.vault_settings import AccessPolicyEntry, VaultSettings


class FakeVaults:
    def __init__(self) -> None:
        self._vaults: dict[str, VaultSettings] = {}

    def register(self, resource_id: str) -> VaultSettings:
        """A vault as the reference deployment wants it: RBAC, soft delete for 90 days, purge protection."""
        settings = VaultSettings(resource_id, True, True, 90, True)
        self._vaults[normalize_scope(resource_id)] = settings
        return settings

    def change(self, resource_id: str, **changes) -> VaultSettings:
        key = normalize_scope(resource_id)
        self._vaults[key] = dataclasses.replace(self._vaults[key], **changes)
        return self._vaults[key]

    def add_access_policy(self, resource_id: str, object_id: str, key_permissions: list[str]) -> None:
        current = self._vaults[normalize_scope(resource_id)]
        entry = AccessPolicyEntry(object_id.lower(), "tenant", tuple(key_permissions))
        self.change(resource_id, access_policies=(*current.access_policies, entry))

    def get_vault(self, resource_id: str) -> VaultSettings:
        found = self._vaults.get(normalize_scope(resource_id))
        if found is None:
            raise NotFound(f"vault {resource_id}: not found")
        return found
