"""Custom role definitions through the unchanged AuthorizationManagementClient, and Key Vault authorizing from the
data actions of whatever definition an assignment names (built-in or custom, wildcards and notDataActions)."""

from __future__ import annotations

import os
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import KeyWrapAlgorithm
from azure.mgmt.authorization.models import Permission, RoleDefinition

from tests.emulators.conftest import OPERATOR, Grant
from tests.support.emulators import Emulators, start_emulators

pytestmark = pytest.mark.emulator

WRAP_UNWRAP = [
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
]


def custom_role(emu: Emulators, name: str, data_actions, not_data_actions=(), scopes=None) -> RoleDefinition:
    return RoleDefinition(
        role_name=name,
        description="test role",
        role_type="CustomRole",
        permissions=[Permission(actions=[], data_actions=list(data_actions), not_data_actions=list(not_data_actions))],
        assignable_scopes=scopes or [f"/subscriptions/{emu.subscription_id}"],
    )


def subscription(emu: Emulators) -> str:
    return f"/subscriptions/{emu.subscription_id}"


def error_code(exc: HttpResponseError) -> str:
    return exc.error.code if exc.error else ""


def test_create_get_list_and_delete_a_custom_role(emu: Emulators) -> None:
    guid = str(uuid.uuid4())
    with emu.authorization_client(OPERATOR) as client:
        created = client.role_definitions.create_or_update(
            subscription(emu), guid, custom_role(emu, "CMK wrapper", WRAP_UNWRAP)
        )
        assert (created.name, created.role_type, created.role_name) == (guid, "CustomRole", "CMK wrapper")
        assert created.permissions[0].data_actions == WRAP_UNWRAP
        assert created.assignable_scopes == [subscription(emu)]

        got = client.role_definitions.get(subscription(emu), guid)
        assert got.id.endswith(f"/providers/Microsoft.Authorization/roleDefinitions/{guid}")
        customs = list(client.role_definitions.list(subscription(emu), filter="type eq 'CustomRole'"))
        assert [r.name for r in customs] == [guid]
        builtins = list(client.role_definitions.list(subscription(emu), filter="type eq 'BuiltInRole'"))
        assert guid not in {r.name for r in builtins} and len(builtins) > 10

        client.role_definitions.delete(subscription(emu), guid)
        with pytest.raises(HttpResponseError) as caught:
            client.role_definitions.get(subscription(emu), guid)
        assert caught.value.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role_name": ""}, "roleName"),
        ({"assignable_scopes": []}, "assignableScopes"),
        ({"assignable_scopes": ["/"]}, "assignableScopes"),
        ({"permissions": []}, "permissions"),
    ],
)
def test_invalid_custom_roles_are_refused_naming_the_field(emu: Emulators, change: dict, field: str) -> None:
    role = custom_role(emu, "Broken", WRAP_UNWRAP)
    for name, value in change.items():
        setattr(role, name, value)
    with emu.authorization_client(OPERATOR) as client, pytest.raises(HttpResponseError) as caught:
        client.role_definitions.create_or_update(subscription(emu), str(uuid.uuid4()), role)
    assert caught.value.status_code == 400
    assert field in caught.value.message


def test_a_built_in_role_cannot_be_redefined_and_names_are_unique(emu: Emulators) -> None:
    with emu.authorization_client(OPERATOR) as client:
        with pytest.raises(HttpResponseError) as caught:
            client.role_definitions.create_or_update(
                subscription(emu), "e147488a-f6f5-4113-8e2d-b22465e65bf6", custom_role(emu, "Mine", WRAP_UNWRAP)
            )
        assert caught.value.status_code == 400
        client.role_definitions.create_or_update(subscription(emu), str(uuid.uuid4()), custom_role(emu, "Once", ["*"]))
        with pytest.raises(HttpResponseError) as caught:
            client.role_definitions.create_or_update(
                subscription(emu), str(uuid.uuid4()), custom_role(emu, "once", ["*"])
            )
        assert caught.value.status_code == 409


def test_key_vault_authorizes_from_a_custom_role_and_its_not_data_actions(
    emu: Emulators, admin_client: KeyClient, grant: Grant
) -> None:
    key = admin_client.create_rsa_key("cmk-custom", hardware_protected=True)
    consumer = str(uuid.uuid4())
    guid = str(uuid.uuid4())
    with emu.authorization_client(OPERATOR) as client:
        client.role_definitions.create_or_update(
            subscription(emu),
            guid,
            custom_role(
                emu,
                "Wrap but never unwrap",
                ["Microsoft.KeyVault/vaults/keys/*"],
                not_data_actions=["microsoft.keyvault/vaults/keys/UNWRAP/action"],  # ARM matches case-insensitively
            ),
        )
    grant(consumer, guid, emu.key_scope("cmk-custom"))

    crypto = emu.crypto_client(key.id, consumer)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, os.urandom(32))  # keys/* grants wrap (remote: by id)
    with pytest.raises(HttpResponseError) as caught:
        crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key)
    assert caught.value.status_code == 403
    assert error_code(caught.value) == "Forbidden"
    assert "keys/unwrap/action" in caught.value.message


def test_a_custom_role_is_assignable_only_within_its_assignable_scopes_and_not_deleted_while_assigned(
    emu: Emulators, grant: Grant
) -> None:
    guid = str(uuid.uuid4())
    vault_scope = emu.vault_resource_id()
    with emu.authorization_client(OPERATOR) as client:
        client.role_definitions.create_or_update(
            subscription(emu), guid, custom_role(emu, "Vault only", WRAP_UNWRAP, scopes=[vault_scope])
        )
        with pytest.raises(HttpResponseError) as caught:
            grant(str(uuid.uuid4()), guid, subscription(emu))
        assert caught.value.status_code == 400 and "assignable" in caught.value.message

        grant(str(uuid.uuid4()), guid, emu.key_scope("cmk-any"))
        with pytest.raises(ResourceExistsError) as refused:
            client.role_definitions.delete(subscription(emu), guid)
        assert refused.value.status_code == 409
        assert error_code(refused.value) == "RoleDefinitionHasAssignments"


def test_custom_roles_survive_a_restart_with_state_dir(tmp_path) -> None:
    state = tmp_path / "state"
    guid = str(uuid.uuid4())
    first = start_emulators(tmp_path / "a", state_dir=state)
    try:
        with first.authorization_client(OPERATOR) as client:
            client.role_definitions.create_or_update(subscription(first), guid, custom_role(first, "Kept", WRAP_UNWRAP))
    finally:
        first.stop()
    second = start_emulators(tmp_path / "b", state_dir=state)
    try:
        with second.authorization_client(OPERATOR) as client:
            kept = client.role_definitions.get(subscription(second), guid)
            assert (kept.role_name, kept.permissions[0].data_actions) == ("Kept", WRAP_UNWRAP)
    finally:
        second.stop()
