"""FakeVaults and AzureVaults (azure-mgmt-keyvault against the ARM emulator) must agree on what a vault reports:
its permission model, access policies and protection against loss."""

from __future__ import annotations

import uuid

import pytest

from shared.errors import NotFound
from shared.ports import Vaults
from tests.fakes.vaults import FakeVaults

SUB = "00000000-0000-0000-0000-0000000000aa"


class Side:
    """One backend, and how a test changes a vault on it (the fake directly; ARM through the management SDK)."""

    def __init__(self, vaults: Vaults, vault_id: str, switch, add_policy, remove_policy=None) -> None:
        self.vaults, self.vault_id, self.switch, self.add_policy = vaults, vault_id, switch, add_policy
        self.remove_policy = remove_policy or (lambda object_id: None)
        self.added: list[str] = []


def _fake_side() -> Side:
    fake = FakeVaults()
    vault_id = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-contract"
    fake.register(vault_id)
    return Side(
        fake,
        vault_id,
        lambda rbac: fake.change(vault_id, rbac_authorization=rbac),
        lambda oid, perms: fake.add_access_policy(vault_id, oid, perms),
    )


def _emulator_side(cloud) -> Side:
    from azure.mgmt.keyvault import KeyVaultManagementClient
    from azure.mgmt.keyvault.models import (
        AccessPolicyEntry,
        AccessPolicyUpdateKind,
        Permissions,
        VaultAccessPolicyParameters,
        VaultAccessPolicyProperties,
        VaultPatchParameters,
        VaultPatchProperties,
    )

    from emulators.credential import EmulatorCredential
    from shared.azure.vaults import AzureVaults

    emulators = cloud.emulators
    vault_id = emulators.vault_resource_id()
    _, sub, _, group, *_, name = vault_id.strip("/").split("/")
    operator = KeyVaultManagementClient(
        EmulatorCredential(str(uuid.uuid4()), emulators.tenant_id),
        sub,
        base_url=emulators.arm_url,
        connection_verify=emulators.ca_cert,
    )

    def switch(rbac: bool) -> None:
        operator.vaults.update(
            group, name, VaultPatchParameters(properties=VaultPatchProperties(enable_rbac_authorization=rbac))
        )

    def update_policy(kind: AccessPolicyUpdateKind, object_id: str, permissions: list[str]) -> None:
        entry = AccessPolicyEntry(
            tenant_id=emulators.tenant_id, object_id=object_id, permissions=Permissions(keys_property=permissions)
        )
        operator.vaults.update_access_policy(
            group,
            name,
            kind,
            VaultAccessPolicyParameters(properties=VaultAccessPolicyProperties(access_policies=[entry])),
        )

    adapter = AzureVaults(cloud.credential(), base_url=emulators.arm_url, connection_verify=emulators.ca_cert)
    return Side(
        adapter,
        vault_id,
        switch,
        lambda oid, perms: update_policy(AccessPolicyUpdateKind.ADD, oid, perms),
        lambda oid: update_policy(AccessPolicyUpdateKind.REMOVE, oid, []),
    )


@pytest.fixture(params=["fake", "emulator"])
def side(request):
    if request.param == "fake":
        yield _fake_side()
        return
    built = _emulator_side(request.getfixturevalue("cloud_with_app_identity"))
    try:
        yield built
    finally:
        for object_id in built.added:
            built.remove_policy(object_id)
        built.switch(True)  # the session's vault goes back to RBAC, without this test's policies, for the others


def test_a_new_vault_uses_rbac_with_soft_delete_for_90_days_and_purge_protection(side):
    settings = side.vaults.get_vault(side.vault_id)
    assert settings.rbac_authorization is True
    assert settings.soft_delete is True and settings.soft_delete_retention_days == 90
    assert settings.purge_protection is True


def test_switching_to_access_policies_is_reported_with_the_policies(side):
    consumer = str(uuid.uuid4())
    side.switch(False)
    side.add_policy(consumer, ["get", "wrapKey", "unwrapKey"])
    side.added.append(consumer)
    settings = side.vaults.get_vault(side.vault_id)
    assert settings.rbac_authorization is False
    [entry] = [p for p in settings.access_policies if p.object_id == consumer]
    assert entry.key_operations == {"read", "wrap", "unwrap"}


def test_a_vault_that_does_not_exist_is_not_found(side):
    missing = side.vault_id.rsplit("/", 1)[0] + "/kv-" + uuid.uuid4().hex[:10]
    with pytest.raises(NotFound):
        side.vaults.get_vault(missing)
