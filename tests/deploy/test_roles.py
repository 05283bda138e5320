"""The app's role assignments in the templates: the roles docs/deploy.md lists and no others, custom roles that are
narrower than the built-ins they replace, and (over the Key Vault emulator, which authorizes from a role's data
actions as Azure does) a key-lifecycle role that is enough for everything the app's Key Vault adapter does to a key,
and nothing more."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization.models import Permission, RoleDefinition

from shared.errors import CmkError
from shared.model import KeyRef, LifetimeAction, RotationActionType, RotationPolicy
from shared.roles import CONTRIBUTOR, CRYPTO_OFFICER, KEY_DATA_ACTIONS, ROLES_BY_NAME, role_by_id
from tests.deploy.templates import GUID, INFRA, ROOT, body, grants, resources, variable
from tests.docs.tables import rows
from tests.support.emulators import Emulators, start_emulators

ROLES = INFRA / "access" / "roles.bicep"
DOC = ROOT / "docs" / "deploy.md"
# What the app does to a managed key (shared/azure/keyvault.py), by the short names of shared.roles.
KEY_LIFECYCLE = ("read", "create", "rotate", "update", "wrap", "unwrap", "getrotationpolicy", "setrotationpolicy")
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
SETUP = "5a0c3d38-93c6-4b8e-9a43-0f1f6a7d2b10"  # who creates the keys in the emulated vault


def custom_role(symbol: str) -> dict:
    return body(resources(ROLES, "Microsoft.Authorization/roleDefinitions")[symbol])["properties"]


def key_lifecycle_actions() -> list[str]:
    return variable(ROLES, "keyLifecycleActions")


def documented_roles() -> set[str]:
    """The roles table of docs/deploy.md as the grants name them: a built-in's GUID, or `custom:<name>`."""
    found = set()
    for role, role_id, *_ in rows(DOC, "role"):
        role_id = role_id.strip("`")
        found.add(role_id if GUID.match(role_id) else f"custom:{role.removesuffix(' (custom)')}")
    return found


def test_the_roles_granted_to_the_app_are_the_ones_the_docs_list():
    granted = {g.role for g in grants() if not g.file.startswith("reference/")}
    assert granted == documented_roles()


def test_the_documented_built_in_roles_are_named_as_azure_names_them():
    for role, role_id, *_ in rows(DOC, "role"):
        role_id = role_id.strip("`")
        if GUID.match(role_id) and (known := role_by_id(role_id)) is not None:
            assert role == known.name, role


def test_the_key_lifecycle_role_allows_what_the_app_does_to_a_key_and_no_more():
    assert sorted(key_lifecycle_actions()) == sorted(KEY_DATA_ACTIONS[op] for op in KEY_LIFECYCLE)
    permissions = custom_role("keyLifecycle")["permissions"]
    assert permissions[0]["actions"] == [] and permissions[0]["dataActions"] == "keyLifecycleActions"
    never = {"delete", "purge", "backup", "restore", "import", "encrypt", "decrypt", "sign", "release"}
    assert not never & set(KEY_LIFECYCLE)
    assert ROLES_BY_NAME["key vault crypto officer"] is CRYPTO_OFFICER  # the role it replaces grants keys/*


def test_the_consumer_roles_touch_only_their_own_resource_type_and_never_delete():
    consumers = (("mysqlKeyMover", "Microsoft.DBforMySQL/"), ("diskEncryptionSetKeyMover", "Microsoft.Compute/"))
    for symbol, provider in consumers:
        (permission,) = custom_role(symbol)["permissions"]
        assert permission["dataActions"] == []
        for action in permission["actions"]:
            assert action.startswith((provider, "Microsoft.ManagedIdentity/userAssignedIdentities/read")), action
            assert not action.endswith(("/delete", "/*")) and action != "*", action
    assert CONTRIBUTOR.guid not in {g.role for g in grants()}  # what the custom roles replace


def test_the_app_is_granted_on_keys_not_vaults_for_key_use():
    key_grants = [g for g in grants() if g.role == "custom:CMK Guardian key lifecycle"]
    assert [g.scope for g in key_grants] == ["key"]
    assert CRYPTO_OFFICER.guid not in {g.role for g in grants()}


# ---- over the emulator ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    running = start_emulators(tmp_path_factory.mktemp("deploy-emulators"))
    try:
        yield running
    finally:
        running.stop()


def grant(emu: Emulators, principal: str, role_guid: str, scope: str) -> None:
    with emu.authorization_client(SETUP) as client:
        client.role_assignments.create(
            scope,
            str(uuid.uuid4()),
            {
                "properties": {
                    "roleDefinitionId": (
                        f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
                        f"{role_guid}"
                    ),
                    "principalId": principal,
                    "principalType": "ServicePrincipal",
                }
            },
        )


@pytest.mark.emulator
def test_the_key_lifecycle_role_on_a_key_is_enough_for_the_app_and_reaches_no_further(emulators: Emulators):
    emu = emulators
    emu.reset()
    grant(emu, SETUP, KEY_VAULT_ADMINISTRATOR, emu.vault_resource_id())
    emu.let_rbac_propagate()
    with emu.key_client(SETUP) as setup:
        setup.create_rsa_key("managed", size=2048, hardware_protected=True, key_operations=["wrapKey", "unwrapKey"])
        setup.create_rsa_key("other", size=2048, hardware_protected=True, key_operations=["wrapKey", "unwrapKey"])
    role = str(uuid.uuid4())
    with emu.authorization_client(SETUP) as client:
        client.role_definitions.create_or_update(
            f"/subscriptions/{emu.subscription_id}",
            role,
            RoleDefinition(
                role_name="CMK Guardian key lifecycle (test)",
                role_type="CustomRole",
                permissions=[Permission(actions=[], data_actions=key_lifecycle_actions())],
                assignable_scopes=[f"/subscriptions/{emu.subscription_id}"],
            ),
        )
    app = str(uuid.uuid4())
    grant(emu, app, role, emu.key_scope("managed"))
    emu.let_rbac_propagate()

    from shared.azure.keyvault import AzureKeyVault

    vault = AzureKeyVault(emu.credential(app), connection_verify=emu.ca_cert, verify_challenge_resource=False)
    key = KeyRef(emu.vault_url(), "managed")
    try:
        first = vault.get_key(key)
        policy = RotationPolicy(
            "P180D",
            (
                LifetimeAction(RotationActionType.ROTATE, time_after_create="P90D"),
                LifetimeAction(RotationActionType.NOTIFY, time_before_expiry="P30D"),
            ),
        )
        vault.set_rotation_policy(key, policy)
        assert vault.get_rotation_policy(key) is not None
        rotated = vault.rotate_key(key)
        created = vault.create_key(
            key, kty="RSA-HSM", size=2048, ops=("wrapKey", "unwrapKey"), expires=datetime.now(UTC) + timedelta(days=180)
        )
        assert {v.version for v in vault.list_versions(key)} >= {first.version, rotated.version, created.version}
        vault.update_version(key, first.version, enabled=False)
        vault.update_version(key, first.version, enabled=True)
        secret = os.urandom(32)
        wrapped = vault.wrap_key(key, created.version, secret)
        assert vault.unwrap_key(wrapped.key_id, wrapped.wrapped, wrapped.algorithm) == secret

        with pytest.raises(CmkError):  # the grant is on the one key, not the vault
            vault.get_key(KeyRef(emu.vault_url(), "other"))
    finally:
        vault.close()
    with emu.key_client(app) as client, pytest.raises(HttpResponseError) as caught:
        client.begin_delete_key("managed")  # Crypto Officer could; this role cannot
    assert caught.value.status_code == 403
