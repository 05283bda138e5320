"""Shared across suites: the emulator side of the contract and adapter tests. One emulator process per session, with
the app's identity holding the role it holds in a real deployment (Key Vault Crypto Officer on the vault), and the
app's own adapters pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shared import roles
from tests.support.emulators import Emulators, start_emulators

# An interrupted run (SIGTERM, SIGINT, SIGHUP, even SIGKILL) leaves no process behind: tests/support/interruptions.py
pytest_plugins = ("tests.support.interruptions",)


@dataclass
class CloudForApp:
    emulators: Emulators
    app_principal: str

    @property
    def vault_url(self) -> str:
        return self.emulators.vault_url()

    @property
    def subscription_id(self) -> str:
        return self.emulators.subscription_id

    def credential(self):
        from emulators.credential import EmulatorCredential

        return EmulatorCredential(self.app_principal, self.emulators.tenant_id)

    def app_keyvault(self, **kwargs):
        from shared.azure.keyvault import AzureKeyVault

        return AzureKeyVault(
            self.credential(), connection_verify=self.emulators.ca_cert, verify_challenge_resource=False, **kwargs
        )

    def app_access(self):
        from shared.azure.access import AzureAccessControl

        return AzureAccessControl(
            self.credential(),
            self.subscription_id,
            base_url=self.emulators.arm_url,
            connection_verify=self.emulators.ca_cert,
        )


@pytest.fixture(scope="session")
def cloud_with_app_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudForApp]:
    emulators = start_emulators(tmp_path_factory.mktemp("contract-emulators"))
    try:
        cloud = CloudForApp(emulators, str(uuid.uuid4()))
        access = cloud.app_access()
        access.create_assignment(
            emulators.vault_resource_id(),
            roles.role_definition_id(cloud.subscription_id, roles.CRYPTO_OFFICER),
            cloud.app_principal,
            "ServicePrincipal",
        )
        yield cloud
    finally:
        emulators.stop()
