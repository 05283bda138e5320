"""The AccessControl port on a Managed HSM: the fake, ManagedHsmAccessControl against the emulated HSM, and the same
adapter behind RoutedAccessControl (what the app is given) must agree on local RBAC's semantics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared import roles
from shared.azure.hsm_access import ManagedHsmAccessControl
from shared.errors import InvalidInput, NotFound
from shared.local_rbac import RoutedAccessControl
from tests.fakes.access import FakeAccessControl
from tests.fakes.hsm_access import FakeManagedHsmAccessControl
from tests.support.emulators import Emulators, start_emulators

SUB = "00000000-0000-0000-0000-0000000000aa"
FAKE_HSM = f"/subscriptions/{SUB}/resourceGroups/rg-hsm/providers/Microsoft.KeyVault/managedHSMs/hsm-contract"
APP = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"


@pytest.fixture(scope="module")
def hsm_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    config = {"managed_hsms": [{"name": "hsm-contract", "resource_group": "rg-hsm"}]}
    running = start_emulators(tmp_path_factory.mktemp("hsm-contract"), config)
    try:
        running.hsm_initial_admins(APP)
        yield running
    finally:
        running.stop()


def _adapter(cloud: Emulators) -> ManagedHsmAccessControl:
    return ManagedHsmAccessControl(
        cloud.hsm_resource_id(),
        cloud.hsm_url(),
        cloud.credential(APP),
        connection_verify=cloud.ca_cert,
        verify_challenge_resource=False,
    )


@pytest.fixture(params=["fake", "emulator", "routed"])
def backend(request):
    if request.param == "fake":
        return FakeManagedHsmAccessControl(FAKE_HSM), FAKE_HSM
    cloud = request.getfixturevalue("hsm_cloud")
    rid = cloud.hsm_resource_id()
    if request.param == "emulator":
        return _adapter(cloud), rid
    return RoutedAccessControl(FakeAccessControl(), {rid: _adapter(cloud)}), rid


@pytest.fixture
def scopes(backend):
    _, rid = backend
    a, b = f"k{uuid.uuid4().hex[:8]}", f"k{uuid.uuid4().hex[:8]}"
    return {"hsm": rid, "keys": f"{rid}/keys", "a": f"{rid}/keys/{a}", "b": f"{rid}/keys/{b}"}


USER = roles.role_definition_id(SUB, roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER)


def test_a_key_grant_applies_at_its_key_only_and_a_listing_above_does_not_show_it(backend, scopes):
    access, _ = backend
    principal = str(uuid.uuid4())
    made = access.create_assignment(scopes["a"], USER, principal, "ServicePrincipal")
    assert made.scope.lower() == scopes["a"].lower()
    assert made.role_guid == roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER.guid
    assert made.id.lower().startswith(scopes["a"].lower() + "/providers/microsoft.authorization/roleassignments/")
    assert principal in {a.principal_id for a in access.list_assignments(scopes["a"])}
    assert principal not in {a.principal_id for a in access.list_assignments(scopes["b"])}
    assert principal not in {a.principal_id for a in access.list_assignments(scopes["keys"])}
    assert principal not in {a.principal_id for a in access.list_assignments(scopes["hsm"])}


def test_grants_at_the_root_and_at_keys_are_listed_at_every_key(backend, scopes):
    access, _ = backend
    root, every_key = str(uuid.uuid4()), str(uuid.uuid4())
    access.create_assignment(scopes["hsm"], roles.role_definition_id(SUB, roles.HSM_CRYPTO_USER), root, "User")
    access.create_assignment(scopes["keys"], USER, every_key, "ServicePrincipal")
    for key in ("a", "b"):
        listed = {a.principal_id: a.scope.lower() for a in access.list_assignments(scopes[key])}
        assert listed[root] == scopes["hsm"].lower() and listed[every_key] == scopes["keys"].lower()


def test_create_is_idempotent_and_delete_reports_whether_it_deleted(backend, scopes):
    access, _ = backend
    principal = str(uuid.uuid4())
    first = access.create_assignment(scopes["b"], USER, principal, "ServicePrincipal")
    again = access.create_assignment(scopes["b"], USER, principal, "ServicePrincipal")
    assert again.id.lower() == first.id.lower()
    assert access.delete_assignment(first.id) is True
    assert access.delete_assignment(first.id) is False
    assert principal not in {a.principal_id for a in access.list_assignments(scopes["b"])}


def test_a_grant_made_with_a_given_name_keeps_it(backend, scopes):
    """Restoration re-creates a revoked grant under its old name."""
    access, _ = backend
    name = str(uuid.uuid4())
    made = access.create_assignment(scopes["a"], USER, str(uuid.uuid4()), "ServicePrincipal", name=name)
    assert made.id.lower().endswith(name)


def test_local_rbac_reports_neither_principal_type_nor_creation_time(backend, scopes):
    access, _ = backend
    made = access.create_assignment(scopes["a"], USER, str(uuid.uuid4()), "ServicePrincipal")
    [listed] = [a for a in access.list_assignments(scopes["a"]) if a.id.lower() == made.id.lower()]
    assert listed.principal_type == "Unknown" and listed.created_on is None


@pytest.mark.parametrize(
    ("role", "operations"),
    [
        (roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER, {"read", "wrap", "unwrap"}),
        (roles.HSM_ADMINISTRATOR, set()),
        (roles.HSM_POLICY_ADMINISTRATOR, set()),
        (roles.HSM_CRYPTO_OFFICER, {"recover", "purge"}),
        (roles.HSM_CRYPTO_AUDITOR, {"read"}),
    ],
    ids=lambda v: v.name if isinstance(v, roles.BuiltInRole) else None,
)
def test_built_in_roles_grant_what_microsoft_documents(backend, role, operations):
    access, _ = backend
    definition = access.get_role_definition(roles.role_definition_id(SUB, role))
    assert definition.guid == role.guid and definition.name == role.name
    assert definition.key_operations() == operations
    assert access.get_role_definition(role.guid).guid == role.guid


def test_crypto_user_manages_and_uses_keys_but_cannot_purge(backend):
    access, _ = backend
    ops = access.get_role_definition(roles.HSM_CRYPTO_USER.guid).key_operations()
    assert {"wrap", "unwrap", "create", "rotate", "update", "import", "delete"} <= ops
    assert not ({"purge", "recover"} & ops)


def test_unknown_definition_is_not_found_and_a_scope_local_rbac_lacks_is_refused(backend, scopes):
    access, _ = backend
    with pytest.raises(NotFound):
        access.get_role_definition(roles.hsm_role_definition_id(str(uuid.uuid4())))
    with pytest.raises(InvalidInput):
        access.list_assignments(scopes["a"] + "/versions/x")


def test_the_router_keeps_arm_scopes_on_arm():
    arm = FakeAccessControl()
    hsm = FakeManagedHsmAccessControl(FAKE_HSM)
    routed = RoutedAccessControl(arm, {FAKE_HSM: hsm})
    vault_key = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/keys/a"
    principal = str(uuid.uuid4())
    made = routed.create_assignment(
        vault_key, roles.role_definition_id(SUB, roles.CRYPTO_SERVICE_ENCRYPTION_USER), principal, "ServicePrincipal"
    )
    assert principal in {a.principal_id for a in arm.list_assignments(vault_key)}
    assert hsm.list_assignments(FAKE_HSM + "/keys/a") == []
    assert routed.get_role_definition(roles.CRYPTO_USER.guid).name == roles.CRYPTO_USER.name
    assert routed.get_role_definition(roles.HSM_CRYPTO_USER.guid).name == roles.HSM_CRYPTO_USER.name
    assert routed.delete_assignment(made.id) is True


def test_the_vaults_port_reads_a_managed_hsm_as_rbac_with_its_protection(hsm_cloud):
    """What compliance and the reconcile read about the HSM itself comes from ARM (`Microsoft.KeyVault/managedHSMs`)."""
    from shared.azure.vaults import AzureVaults

    vaults = AzureVaults(hsm_cloud.credential(APP), base_url=hsm_cloud.arm_url, connection_verify=hsm_cloud.ca_cert)
    settings = vaults.get_vault(hsm_cloud.hsm_resource_id())
    assert settings.rbac_authorization and settings.soft_delete and settings.purge_protection
    assert settings.soft_delete_retention_days == 90 and settings.access_policies == ()
    with pytest.raises(NotFound):
        vaults.get_vault(hsm_cloud.hsm_resource_id().replace("hsm-contract", "hsm-missing"))
