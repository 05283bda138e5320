"""FakeAccessControl and AzureAccessControl (against the ARM emulator) must agree on role assignment semantics."""

from __future__ import annotations

import uuid

import pytest

from shared import roles
from shared.ports import AccessControl
from tests.fakes.access import FakeAccessControl

SUB = "00000000-0000-0000-0000-0000000000aa"


@pytest.fixture(params=["fake", "emulator"])
def backend(request) -> tuple[AccessControl, str]:
    if request.param == "fake":
        return FakeAccessControl(), SUB
    cloud = request.getfixturevalue("cloud_with_app_identity")
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
