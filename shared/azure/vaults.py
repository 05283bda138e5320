"""The Vaults port over azure-mgmt-keyvault: a vault's permission model, access policies and protection settings.

Only reads. One management client per subscription (vaults of several subscriptions can share an inventory),
built on first use; the SDK's own pipeline retries on the same schedule as the other adapters.
"""

from __future__ import annotations

from azure.core.credentials import TokenCredential
from azure.mgmt.keyvault import KeyVaultManagementClient

from shared.azure.arm_clients import PerSubscription
from shared.azure.errors import SDK_ERRORS, translate_error
from shared.errors import InvalidInput, NotFound, UnexpectedResponse
from shared.untrusted import describe_value
from shared.vault_settings import VaultSettings, vault_settings_from_arm


def _vault_parts(resource_id: str) -> tuple[str, str, str, bool]:
    """(subscription, resource group, name, is a Managed HSM) of a Microsoft.KeyVault/vaults or managedHSMs id."""
    parts = resource_id.strip().strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if (
        len(parts) != 8
        or lowered[0] != "subscriptions"
        or lowered[2] != "resourcegroups"
        or lowered[4:6] != ["providers", "microsoft.keyvault"]
        or lowered[6] not in ("vaults", "managedhsms")
    ):
        raise InvalidInput(
            "resource_id",
            f"not a Microsoft.KeyVault/vaults or managedHSMs resource id ({describe_value(resource_id, quote=True)})",
        )
    return parts[1], parts[3], parts[7], lowered[6] == "managedhsms"


class AzureVaults:
    def __init__(
        self,
        credential: TokenCredential,
        *,
        base_url: str = "https://management.azure.com",
        connection_verify: str | bool = True,
    ) -> None:
        self._client = PerSubscription(
            KeyVaultManagementClient, credential, base_url=base_url, connection_verify=connection_verify
        )

    def get_vault(self, resource_id: str) -> VaultSettings:
        subscription, group, name, managed_hsm = _vault_parts(resource_id)
        try:
            client = self._client(subscription)
            vault = client.managed_hsms.get(group, name) if managed_hsm else client.vaults.get(group, name)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"vault {resource_id}", NotFound) from exc
        try:
            return vault_settings_from_arm(vault.as_dict())  # REST-shaped (camelCase), as ARM sent it
        except ValueError as exc:
            raise UnexpectedResponse(f"vault {resource_id}: ARM returned no usable vault ({exc})") from exc

    def close(self) -> None:
        self._client.close()
