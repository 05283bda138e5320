"""The emulated Managed HSM, through the unchanged SDK clients: keys as a vault serves them, local RBAC as
`KeyVaultAccessControlClient` expects it (built-in roles' real ids, three scopes, listing that does not reach down),
no events, the 100-version cap, the 28-day rotation minimum, and propagation like ARM's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.administration import KeyVaultDataAction, KeyVaultPermission, KeyVaultRoleScope
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
from azure.keyvault.keys.crypto import KeyWrapAlgorithm

from tests.support.emulators import Emulators, start_emulators

CRYPTO_USER = "21dbd100-6940-42c2-9190-5d6cb909625b"
SERVICE_ENCRYPTION_USER = "33413926-3206-4cdd-b39a-83574fe37a17"
ADMINISTRATOR = "a290e904-7015-4bba-90c8-60543313cdb4"
CRYPTO_OFFICER = "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"
ADMIN = "7d6a3c2e-1b4f-4c8d-9e0f-112233445566"
CONFIG = {
    "managed_hsms": [{"name": "hsm-test", "resource_group": "rg-hsm"}],
    "eventgrid_subscriptions": [],
}


@pytest.fixture(scope="module")
def hsm_emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    running = start_emulators(tmp_path_factory.mktemp("hsm-emulators"), CONFIG)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def emu(hsm_emulators: Emulators) -> Emulators:
    assert hsm_emulators.alive(), hsm_emulators.stderr()
    hsm_emulators.reset()
    hsm_emulators.hsm_initial_admins(ADMIN)
    return hsm_emulators


def _grant(emu: Emulators, role: str, principal: str, scope: str) -> str:
    with emu.hsm_access_client(ADMIN) as client:
        definition = f"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"
        return client.create_role_assignment(scope, definition, principal).name


def test_built_in_roles_have_their_real_ids_and_data_actions(emu):
    with emu.hsm_access_client(ADMIN) as client:
        roles = {d.name: d for d in client.list_role_definitions(KeyVaultRoleScope.GLOBAL)}
    assert roles[SERVICE_ENCRYPTION_USER].role_name == "Managed HSM Crypto Service Encryption User"
    assert set(roles[SERVICE_ENCRYPTION_USER].permissions[0].data_actions) == {
        KeyVaultDataAction.READ_HSM_KEY,
        KeyVaultDataAction.WRAP_HSM_KEY,
        KeyVaultDataAction.UNWRAP_HSM_KEY,
    }
    assert KeyVaultDataAction.WRITE_ROLE_ASSIGNMENT in roles[CRYPTO_OFFICER].permissions[0].data_actions
    assert KeyVaultDataAction.WRAP_HSM_KEY not in roles[ADMINISTRATOR].permissions[0].data_actions
    assert roles[CRYPTO_USER].role_type == "AKVBuiltInRole"


def test_assignments_at_three_scopes_and_listing_does_not_reach_down(emu):
    user, key_user = str(uuid.uuid4()), str(uuid.uuid4())
    _grant(emu, CRYPTO_USER, user, "/keys")
    name = _grant(emu, SERVICE_ENCRYPTION_USER, key_user, "/keys/k1")
    with emu.hsm_access_client(ADMIN) as client:
        at_root = {a.properties.principal_id for a in client.list_role_assignments("/")}
        at_keys = {a.properties.principal_id for a in client.list_role_assignments("/keys")}
        at_key = {a.properties.principal_id for a in client.list_role_assignments("/keys/k1")}
        at_other = {a.properties.principal_id for a in client.list_role_assignments("/keys/k2")}
        got = client.get_role_assignment("/keys/k1", name)
        assert got.properties.scope == "/keys/k1"
        assert got.properties.role_definition_id.endswith(SERVICE_ENCRYPTION_USER)
        client.delete_role_assignment("/keys/k1", name)
        with pytest.raises(ResourceNotFoundError):
            client.get_role_assignment("/keys/k1", name)
    assert ADMIN in at_root and user not in at_root and key_user not in at_root
    assert user in at_keys and key_user not in at_keys
    assert {ADMIN, user, key_user} <= at_key
    assert key_user not in at_other and user in at_other


def test_keys_are_authorized_by_local_rbac_only(emu):
    consumer = str(uuid.uuid4())
    keys = emu.hsm_key_client(ADMIN)
    with pytest.raises(HttpResponseError) as denied:  # the Administrator manages roles, not keys
        keys.create_rsa_key("k1", size=2048, hardware_protected=True)
    assert denied.value.status_code == 403
    _grant(emu, CRYPTO_USER, ADMIN, "/")
    key = keys.create_rsa_key("k1", size=2048, hardware_protected=True)
    assert key.id.startswith(emu.hsm_url() + "/keys/k1/")
    crypto = emu.crypto_client(key.id, consumer)
    with pytest.raises(HttpResponseError) as no_grant:
        crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"0" * 32)
    assert no_grant.value.status_code == 403
    _grant(emu, SERVICE_ENCRYPTION_USER, consumer, "/keys/k1")
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"0" * 32)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == b"0" * 32


def test_an_arm_grant_gives_no_key_access_on_the_hsm(emu):
    principal = str(uuid.uuid4())
    emu.authorization_client(ADMIN)  # ARM's assignments are another system: none reaches the HSM's data plane
    _grant(emu, CRYPTO_USER, ADMIN, "/")
    emu.hsm_key_client(ADMIN).create_rsa_key("k1", size=2048, hardware_protected=True)
    with pytest.raises(HttpResponseError) as denied:
        emu.hsm_key_client(principal).get_key("k1")
    assert denied.value.status_code == 403


def test_role_assignment_writes_need_a_role_manager(emu):
    user = str(uuid.uuid4())
    _grant(emu, CRYPTO_USER, user, "/")
    with emu.hsm_access_client(user) as client, pytest.raises(HttpResponseError) as denied:
        client.create_role_assignment(
            "/keys/k1",
            f"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{CRYPTO_USER}",
            str(uuid.uuid4()),
        )
    assert denied.value.status_code == 403


def test_a_custom_role_is_defined_and_grants_what_it_says(emu):
    with emu.hsm_access_client(ADMIN) as client:
        made = client.set_role_definition(
            KeyVaultRoleScope.GLOBAL,
            role_name="wrap only",
            permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.WRAP_HSM_KEY])],
        )
        assert client.get_role_definition("/", made.name).role_type == "CustomRole"
        with pytest.raises(HttpResponseError):
            client.set_role_definition(
                "/", permissions=[KeyVaultPermission(data_actions=["Microsoft.KeyVault/vaults/keys/read"])]
            )


def test_no_events(emu):
    _grant(emu, CRYPTO_USER, ADMIN, "/")
    keys = emu.hsm_key_client(ADMIN)
    keys.create_rsa_key("k1", size=2048, hardware_protected=True)
    keys.rotate_key("k1")
    status, events = emu.admin("GET", "/eventgrid/events")
    assert status == 200 and "k1" not in str(events)  # a vault's create and rotate each publish one (test_eventgrid)


def test_the_101st_version_is_refused(monkeypatch):
    """In process: a hundred real RSA keys take over a minute on a busy machine, and the cap is the store's."""
    import asyncio

    from emulators import keyvault_store
    from emulators.core import MovableClock
    from emulators.keyvault_keys import NewKeySpec
    from emulators.managed_hsm import HsmStore, NoEvents

    generated = keyvault_store._generate_pem(2048)
    monkeypatch.setattr(keyvault_store, "_generate_pem", lambda size: generated)
    store = HsmStore(name="hsm", url="https://127.0.0.1:1", resource_id="/x", clock=MovableClock(), events=NoEvents())
    spec = NewKeySpec(kty="RSA-HSM", key_size=2048, key_ops=("wrapKey", "unwrapKey"))

    async def run() -> None:
        for _ in range(100):
            await store.create_key("capped", spec)
        with pytest.raises(keyvault_store.KeyVaultError) as refused:
            await store.rotate("capped")
        assert refused.value.status == 400 and "100 versions" in refused.value.message
        await store.create_key("other", spec)  # the cap is per key

    asyncio.run(run())
    assert len(store.get("capped").versions) == 100


def test_rotation_policy_may_not_rotate_more_often_than_every_28_days(emu):
    _grant(emu, CRYPTO_USER, ADMIN, "/")
    keys = emu.hsm_key_client(ADMIN)
    keys.create_rsa_key("k1", size=2048, hardware_protected=True)
    fast = [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P7D")]
    with pytest.raises(HttpResponseError) as refused:
        keys.update_key_rotation_policy("k1", KeyRotationPolicy(), lifetime_actions=fast, expires_in="P90D")
    assert refused.value.status_code == 400
    ok = [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P28D")]
    assert (
        keys.update_key_rotation_policy("k1", KeyRotationPolicy(), lifetime_actions=ok, expires_in="P90D").expires_in
        == "P90D"
    )


def test_assignment_changes_propagate_like_arms(emu):
    emu.set_rbac_propagation(600)
    try:
        _grant(emu, CRYPTO_USER, ADMIN, "/")
        with pytest.raises(HttpResponseError) as early:
            emu.hsm_key_client(ADMIN).create_rsa_key("k1", size=2048, hardware_protected=True)
        assert early.value.status_code == 403
        emu.let_rbac_propagate()
        emu.hsm_key_client(ADMIN).create_rsa_key("k1", size=2048, hardware_protected=True)
    finally:
        emu.set_rbac_propagation(0)


def test_local_rbac_and_keys_survive_a_restart(tmp_path):
    state = tmp_path / "state"
    first = start_emulators(tmp_path / "one", CONFIG, state_dir=state)
    user = str(uuid.uuid4())
    try:
        first.hsm_initial_admins(ADMIN)
        name = _grant(first, CRYPTO_USER, user, "/keys/k1")
        _grant(first, CRYPTO_USER, ADMIN, "/")
        first.hsm_key_client(ADMIN).create_rsa_key("k1", size=2048, hardware_protected=True)
    finally:
        first.stop()
    again = start_emulators(tmp_path / "two", CONFIG, state_dir=state)
    try:
        with again.hsm_access_client(ADMIN) as client:
            assert client.get_role_assignment("/keys/k1", name).properties.principal_id == user
        assert again.hsm_key_client(user).get_key("k1").name == "k1"  # authorized by the restored assignment
    finally:
        again.stop()


def test_an_imported_key_goes_into_the_hsm_under_its_import_right(emu):
    """Bring your own key on a Managed HSM: the import needs keys/import/action (Crypto User), and the HSM then holds
    exactly the material brought in."""
    from localrun.onprem_hsm import import_into, onprem_key

    importer, reader = str(uuid.uuid4()), str(uuid.uuid4())
    _grant(emu, SERVICE_ENCRYPTION_USER, reader, "/keys/byok")
    with pytest.raises(HttpResponseError) as denied:
        import_into(emu.hsm_key_client(reader), "byok", onprem_key())
    assert denied.value.status_code == 403
    _grant(emu, CRYPTO_USER, importer, "/keys/byok")
    private = onprem_key()
    imported = import_into(emu.hsm_key_client(importer), "byok", private)
    assert int.from_bytes(imported.key.n, "big") == private.public_key().public_numbers().n
    crypto = emu.crypto_client(imported.id, reader)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"1" * 32)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == b"1" * 32
