"""A vault switched to the access-policy model (enableRbacAuthorization: false, through the unchanged
azure-mgmt-keyvault client) authorizes from its access policies and ignores role assignments; switching back
restores RBAC."""

from __future__ import annotations

import os
import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import KeyWrapAlgorithm
from azure.mgmt.keyvault.models import (
    AccessPolicyEntry,
    Permissions,
    VaultAccessPolicyParameters,
    VaultAccessPolicyProperties,
    VaultPatchParameters,
    VaultPatchProperties,
)

from tests.emulators.conftest import CRYPTO_SERVICE_ENCRYPTION_USER, OPERATOR, Grant
from tests.support.emulators import Emulators

pytestmark = pytest.mark.emulator


def group_and_name(emu: Emulators) -> tuple[str, str]:
    parts = emu.vault_resource_id().split("/")
    return parts[4], parts[-1]


def set_rbac(emu: Emulators, enabled: bool) -> None:
    with emu.keyvault_management_client(OPERATOR) as client:
        updated = client.vaults.update(
            *group_and_name(emu),
            VaultPatchParameters(properties=VaultPatchProperties(enable_rbac_authorization=enabled)),
        )
        assert updated.properties.enable_rbac_authorization is enabled


def add_policy(emu: Emulators, principal_id: str, keys: list[str]) -> None:
    permissions = Permissions(keys_property=keys)
    entry = AccessPolicyEntry(tenant_id=emu.tenant_id, object_id=principal_id, permissions=permissions)
    with emu.keyvault_management_client(OPERATOR) as client:
        client.vaults.update_access_policy(
            *group_and_name(emu),
            "add",
            VaultAccessPolicyParameters(properties=VaultAccessPolicyProperties(access_policies=[entry])),
        )


def inner_code(exc: HttpResponseError) -> str | None:
    return ((exc.response.json()["error"]).get("innererror") or {}).get("code")


def test_vaults_get_reads_the_vault_through_azure_mgmt_keyvault(emu: Emulators) -> None:
    with emu.keyvault_management_client(OPERATOR) as client:
        vault = client.vaults.get(*group_and_name(emu))
    assert vault.id == emu.vault_resource_id()
    assert vault.properties.enable_rbac_authorization is True
    assert vault.properties.enable_purge_protection is True
    assert vault.properties.soft_delete_retention_in_days == 90
    assert vault.properties.vault_uri.rstrip("/") == emu.vault_url()


def test_access_policies_replace_rbac_and_rbac_comes_back(
    emu: Emulators, admin_client: KeyClient, grant: Grant
) -> None:
    key = admin_client.create_rsa_key("cmk-ap", hardware_protected=True)
    consumer = str(uuid.uuid4())
    rbac_only = str(uuid.uuid4())
    grant(rbac_only, CRYPTO_SERVICE_ENCRYPTION_USER, emu.key_scope("cmk-ap"))

    set_rbac(emu, False)
    add_policy(emu, consumer, ["get", "wrapKey", "unwrapKey"])

    with pytest.raises(HttpResponseError) as caught:  # the Key Vault Administrator assignment no longer counts
        admin_client.get_key("cmk-ap")
    assert caught.value.status_code == 403 and inner_code(caught.value) == "AccessDenied"
    assert f"oid={OPERATOR}" in caught.value.message and "keys get permission" in caught.value.message

    crypto = emu.crypto_client(key.id, consumer)
    dek = os.urandom(32)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek
    with emu.key_client(consumer) as as_consumer, pytest.raises(HttpResponseError) as refused:
        as_consumer.create_rsa_key("cmk-ap-2")
    assert inner_code(refused.value) == "AccessDenied" and "keys create permission" in refused.value.message
    with pytest.raises(HttpResponseError) as ignored:
        emu.crypto_client(key.id, rbac_only).unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key)
    assert ignored.value.status_code == 403

    set_rbac(emu, True)
    assert admin_client.get_key("cmk-ap").id == key.id
    with pytest.raises(HttpResponseError) as back:
        emu.crypto_client(key.id, consumer).unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key)
    assert inner_code(back.value) == "ForbiddenByRbac"


def test_all_grants_every_key_permission_case_insensitively(emu: Emulators, admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-all")
    owner = str(uuid.uuid4())
    set_rbac(emu, False)
    add_policy(emu, owner, ["All"])
    with emu.key_client(owner) as client:
        rotated = client.rotate_key("cmk-all")
        assert client.get_key("cmk-all").properties.version == rotated.properties.version
        assert client.get_key_rotation_policy("cmk-all") is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"enable_purge_protection": False}, "enablePurgeProtection"),
        ({"soft_delete_retention_in_days": 30}, "softDeleteRetentionInDays"),
    ],
)
def test_soft_delete_settings_cannot_be_weakened_after_creation(emu: Emulators, change: dict, field: str) -> None:
    with emu.keyvault_management_client(OPERATOR) as client, pytest.raises(HttpResponseError) as caught:
        client.vaults.update(*group_and_name(emu), VaultPatchParameters(properties=VaultPatchProperties(**change)))
    assert caught.value.status_code == 400 and field in caught.value.message
