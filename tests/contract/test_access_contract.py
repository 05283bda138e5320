"""FakeAccessControl and AzureAccessControl (against the ARM emulator) must agree on role assignment semantics."""

from __future__ import annotations

import uuid

import pytest

from shared import roles
from shared.errors import NotFound
from shared.ports import AccessControl
from tests.fakes.access import FakeAccessControl
from tests.fakes.clock import FakeClock

SUB = "00000000-0000-0000-0000-0000000000aa"


@pytest.fixture(params=["fake", "emulator", "routed"])
def backend(request) -> tuple[AccessControl, str]:
    """`routed`: the ARM adapter behind RoutedAccessControl beside a Managed HSM (what the app is given)."""
    if request.param == "fake":
        return FakeAccessControl(FakeClock()), SUB
    cloud = request.getfixturevalue("cloud_with_app_identity")
    if request.param == "routed":
        from shared.local_rbac import RoutedAccessControl
        from tests.fakes.hsm_access import FakeManagedHsmAccessControl

        hsm = f"/subscriptions/{cloud.subscription_id}/resourceGroups/rg-hsm/providers/Microsoft.KeyVault/managedHSMs/h"
        return RoutedAccessControl(cloud.app_access(), {hsm: FakeManagedHsmAccessControl(hsm)}), cloud.subscription_id
    return cloud.app_access(), cloud.subscription_id


@pytest.fixture
def scopes(backend):
    _, sub = backend
    rg = f"/subscriptions/{sub}/resourceGroups/rg-contract-{uuid.uuid4().hex[:8]}"
    vault = f"{rg}/providers/Microsoft.KeyVault/vaults/kv-contract"
    return {"sub": f"/subscriptions/{sub}", "rg": rg, "vault": vault, "a": f"{vault}/keys/a", "b": f"{vault}/keys/b"}


def _role(sub: str, role: roles.BuiltInRole) -> str:
    return roles.role_definition_id(sub, role)


def test_assignment_applies_at_its_scope_and_below_not_to_siblings(backend, scopes):
    access, sub = backend
    principal = str(uuid.uuid4())
    created = access.create_assignment(
        scopes["a"], _role(sub, roles.CRYPTO_SERVICE_ENCRYPTION_USER), principal, "ServicePrincipal"
    )
    assert created.scope.lower() == scopes["a"].lower()
    assert created.role_guid == roles.CRYPTO_SERVICE_ENCRYPTION_USER.guid
    assert principal in {a.principal_id for a in access.list_assignments(scopes["a"])}
    assert principal not in {a.principal_id for a in access.list_assignments(scopes["b"])}
    assert principal not in {a.principal_id for a in access.list_assignments(scopes["vault"])}


def test_vault_scope_assignment_is_inherited_by_every_key(backend, scopes):
    access, sub = backend
    principal = str(uuid.uuid4())
    access.create_assignment(scopes["vault"], _role(sub, roles.CRYPTO_USER), principal, "ServicePrincipal")
    for key in ("a", "b"):
        found = [a for a in access.list_assignments(scopes[key]) if a.principal_id == principal]
        assert len(found) == 1 and found[0].scope.lower() == scopes["vault"].lower()


def test_create_is_idempotent_and_delete_reports_whether_it_deleted(backend, scopes):
    access, sub = backend
    principal = str(uuid.uuid4())
    role = _role(sub, roles.CRYPTO_SERVICE_ENCRYPTION_USER)
    first = access.create_assignment(scopes["b"], role, principal, "ServicePrincipal")
    again = access.create_assignment(scopes["b"], role, principal, "ServicePrincipal")
    assert again.id == first.id
    assert access.delete_assignment(first.id) is True
    assert access.delete_assignment(first.id) is False
    assert principal not in {a.principal_id for a in access.list_assignments(scopes["b"])}


def _define_role(backend, name: str, data_actions: list[str], not_data_actions: list[str] | None = None) -> str:
    """A custom role, defined the way each side holds it: in the fake directly, in ARM through a PUT."""
    access, sub = backend
    if isinstance(access, FakeAccessControl):
        return access.define_role(name, data_actions=data_actions, not_data_actions=not_data_actions)
    from azure.mgmt.authorization import AuthorizationManagementClient

    from emulators.credential import EmulatorCredential

    guid = str(uuid.uuid4())
    emulators = access_emulators[id(access)]
    client = AuthorizationManagementClient(
        EmulatorCredential(str(uuid.uuid4()), emulators.tenant_id),
        sub,
        base_url=emulators.arm_url,
        connection_verify=emulators.ca_cert,
    )
    with client:
        client.role_definitions.create_or_update(
            f"/subscriptions/{sub}",
            guid,
            {
                "properties": {
                    "roleName": f"{name} {guid[:8]}",
                    "type": "CustomRole",
                    "description": "contract test",
                    "assignableScopes": [f"/subscriptions/{sub}"],
                    "permissions": [{"dataActions": data_actions, "notDataActions": not_data_actions or []}],
                }
            },
        )
    return guid


access_emulators: dict[int, object] = {}


@pytest.fixture
def role_backend(backend, request):
    access, _ = backend
    if not isinstance(access, FakeAccessControl):
        access_emulators[id(access)] = request.getfixturevalue("cloud_with_app_identity").emulators
    return backend


@pytest.mark.parametrize(
    ("role", "operations"),
    [
        (roles.CRYPTO_SERVICE_ENCRYPTION_USER, {"read", "wrap", "unwrap"}),
        (
            roles.CRYPTO_USER,
            {"read", "update", "backup", "encrypt", "decrypt", "wrap", "unwrap", "sign", "verify"},
        ),
        (roles.OWNER, set()),
        (roles.CONTRIBUTOR, set()),
        (roles.ARM_READER, set()),
        (roles.USER_ACCESS_ADMINISTRATOR, set()),
        (roles.READER, {"read", "getrotationpolicy"}),
    ],
    ids=lambda v: v.name if isinstance(v, roles.BuiltInRole) else None,
)
def test_built_in_role_definitions_grant_what_azure_documents(backend, role, operations):
    access, sub = backend
    definition = access.get_role_definition(roles.role_definition_id(sub, role))
    assert definition.guid == role.guid and definition.name == role.name
    assert definition.key_operations() == operations
    assert access.get_role_definition(role.guid).guid == role.guid  # a bare GUID works too


def test_crypto_officer_manages_and_uses_keys_and_the_administrator_can_also_purge(backend):
    access, sub = backend
    officer = access.get_role_definition(roles.role_definition_id(sub, roles.CRYPTO_OFFICER)).key_operations()
    assert {"wrap", "unwrap", "delete", "rotate", "setrotationpolicy", "release"} <= officer
    assert "purge" not in officer  # deletedKeys/* is outside keys/*
    admin = access.get_role_definition(roles.role_definition_id(sub, roles.ADMINISTRATOR)).key_operations()
    assert {"purge", "recover", "wrap"} <= admin


def test_unknown_role_definition_is_not_found(backend):
    access, sub = backend
    with pytest.raises(NotFound):
        access.get_role_definition(
            f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{uuid.uuid4()}"
        )


def test_custom_role_is_read_back_with_its_data_actions(role_backend):
    access, sub = role_backend
    guid = _define_role(
        role_backend,
        "cmk consumer",
        ["Microsoft.KeyVault/vaults/keys/*"],
        ["Microsoft.KeyVault/vaults/keys/decrypt/action", "Microsoft.KeyVault/vaults/keys/sign/action"],
    )
    definition = access.get_role_definition(
        f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    )
    assert definition.role_type == "CustomRole"
    ops = definition.key_operations()
    assert {"read", "wrap", "unwrap", "encrypt"} <= ops
    assert not ({"decrypt", "sign"} & ops)


def test_an_assignment_carries_when_it_was_created(backend, scopes):
    """ARM's `createdOn`: a removal that must outlast RBAC's propagation waits on the minimal grant's age."""
    access, sub = backend
    role = _role(sub, roles.CRYPTO_SERVICE_ENCRYPTION_USER)
    made = access.create_assignment(scopes["a"], role, str(uuid.uuid4()), "ServicePrincipal")
    [listed] = [a for a in access.list_assignments(scopes["a"]) if a.id.lower() == made.id.lower()]
    assert listed.created_on is not None and listed.created_on.tzinfo is not None
