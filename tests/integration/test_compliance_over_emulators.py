"""The access judgement over the wire: the compliance report through the real adapters (Key Vault, ARM role
assignments and definitions, the vault resource through azure-mgmt-keyvault) against the emulators, which serve
Azure's own role definitions. The same cases run over fakes in tests/unit/access/test_judgement.py."""

from __future__ import annotations

import uuid

import pytest

from shared import roles
from tests.support.deployment import Deployment

KEYS = "Microsoft.KeyVault/vaults/keys/"


@pytest.fixture
def deployment(cloud_with_app_identity):
    built = Deployment(cloud_with_app_identity)
    yield built
    for assignment in built.access.list_assignments(f"/subscriptions/{built.sub}"):
        if assignment.scope.lower() == f"/subscriptions/{built.sub}".lower():
            built.access.delete_assignment(assignment.id)  # subscription-wide grants would leak into other tests


def test_the_reference_deployment_is_compliant(deployment):
    assert deployment.report().findings == []


@pytest.mark.parametrize(
    "role", [roles.OWNER, roles.CONTRIBUTOR, roles.ARM_READER, roles.USER_ACCESS_ADMINISTRATOR], ids=lambda r: r.name
)
def test_control_plane_roles_at_subscription_scope_are_not_key_use(deployment, role):
    deployment.grant(f"/subscriptions/{deployment.sub}", str(uuid.uuid4()), role.guid)
    assert deployment.report().findings == []


def test_custom_role_with_wrap_unwrap_is_key_use(deployment):
    guid = deployment.define_role([KEYS + "wrap/action", KEYS + "unwrap/action"])
    deployment.grant(deployment.key("aks-encryption-key").scope, str(uuid.uuid4()), guid)
    assert deployment.codes("aks-encryption-key") == {"AccessExtra"}


def test_consumer_on_a_custom_role_with_more_is_too_broad_not_missing(deployment):
    aks = deployment.key("aks-encryption-key")
    for a in deployment.access.list_assignments(aks.scope):
        if a.principal_id == aks.identity.principal_id:
            deployment.access.delete_assignment(a.id)
    deployment.grant(aks.scope, aks.identity.principal_id, deployment.define_role([KEYS + "*"]))
    assert deployment.codes("aks-encryption-key") == {"AccessTooBroad"}


def test_group_grant_is_its_own_finding(deployment):
    deployment.grant(deployment.key("mysql-encryption-key").scope, deployment.group_id, roles.CRYPTO_USER.guid, "Group")
    assert deployment.codes("mysql-encryption-key") == {"AccessViaGroup"}


def test_mysql_key_version_with_an_expiry_is_critical(deployment):
    from datetime import timedelta

    mysql = deployment.key("mysql-encryption-key")
    current = deployment.vault.get_key(mysql.ref)
    deployment.vault.update_version(mysql.ref, current.version, expires=deployment.clock.now() + timedelta(days=200))
    [found] = [f for f in deployment.report().findings if f.code == "KeyExpiryForbidden"]
    assert found.key == mysql.name and found.severity.value == "critical"


def test_access_policy_vault_is_critical_and_its_policies_are_judged(deployment):
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

    emulators = deployment.cloud.emulators
    _, sub, _, group, *_, name = emulators.vault_resource_id().strip("/").split("/")
    operator = KeyVaultManagementClient(
        EmulatorCredential(str(uuid.uuid4()), emulators.tenant_id),
        sub,
        base_url=emulators.arm_url,
        connection_verify=emulators.ca_cert,
    )

    def use_rbac(flag: bool) -> None:
        patch = VaultPatchParameters(properties=VaultPatchProperties(enable_rbac_authorization=flag))
        operator.vaults.update(group, name, patch)

    def add_policy(object_id: str, permissions: list[str]) -> None:
        entry = AccessPolicyEntry(
            tenant_id=emulators.tenant_id, object_id=object_id, permissions=Permissions(keys_property=permissions)
        )
        operator.vaults.update_access_policy(
            group,
            name,
            AccessPolicyUpdateKind.ADD,
            VaultAccessPolicyParameters(properties=VaultAccessPolicyProperties(access_policies=[entry])),
        )

    def remove_policy(object_id: str) -> None:
        entry = AccessPolicyEntry(tenant_id=emulators.tenant_id, object_id=object_id, permissions=Permissions())
        operator.vaults.update_access_policy(
            group,
            name,
            AccessPolicyUpdateKind.REMOVE,
            VaultAccessPolicyParameters(properties=VaultAccessPolicyProperties(access_policies=[entry])),
        )

    aks, mysql = deployment.key("aks-encryption-key"), deployment.key("mysql-encryption-key")
    stranger = str(uuid.uuid4())
    use_rbac(False)
    try:
        add_policy(mysql.identity.principal_id, ["get", "wrapKey", "unwrapKey"])
        add_policy(stranger, ["get", "decrypt"])
        report = deployment.report()
    finally:
        remove_policy(mysql.identity.principal_id)
        remove_policy(stranger)
        use_rbac(True)
    ours = {stranger, aks.identity.principal_id, mysql.identity.principal_id}
    codes = {
        k.name: {f.code for f in k.findings if f.code != "AccessExtra" or f.detail["principal_id"] in ours}
        for k in report.keys
    }
    model = next(f for f in report.findings if f.code == "VaultAccessPolicyModel")
    assert model.severity.value == "critical"
    # Role assignments no longer count: AKS's identity, which holds only one, has lost its key, and so has the app
    # (its Crypto Officer grant is an assignment too), which the emulated Key Vault shows as it would in Azure.
    assert codes[aks.name] == {"VaultAccessPolicyModel", "AccessMissing", "AccessExtra", "KeyUnreadable"}
    # MySQL's identity is served by its policy, which reaches every key of the vault (AKS's too: extra there).
    assert codes[mysql.name] == {"VaultAccessPolicyModel", "AccessTooBroad", "AccessExtra", "KeyUnreadable"}
    extra = {(f.key, f.detail["principal_id"]) for f in report.findings if f.code == "AccessExtra"}
    # Only principals this test made count: other tests share the session's vault and its policies.
    assert {e for e in extra if e[1] in ours} == {
        (aks.name, stranger),
        (mysql.name, stranger),
        (aks.name, mysql.identity.principal_id),
    }
