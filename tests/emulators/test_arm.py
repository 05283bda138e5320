"""ARM emulator: built-in roles, scope inheritance of data actions, role assignments through the unchanged
AuthorizationManagementClient over HTTPS, the Resources events they raise, and snapshot/restore.

The role table below is typed from Microsoft's "Azure built-in roles for Security" reference independently of the
emulator's copy: a wrong GUID or data action on either side fails here.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from emulators.arm import ArmState, arm_routes
from emulators.core import MovableClock, make_self_signed_cert
from emulators.eventgrid import EventGrid
from tests.emulators.test_eventgrid import LoopThread, Receiver, wait_for

TENANT = "6c1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
SUB = "0b4f6c8e-2d3a-4e5f-9a8b-7c6d5e4f3a2b"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-keys"
VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-one"
KEY = f"{VAULT}/keys/mysql-cmk"
SIBLING_KEY = f"{VAULT}/keys/aks-cmk"
OTHER_VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-one-dr"  # same name prefix, different vault

ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
CRYPTO_OFFICER = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
READER_KV = "21090545-7ca7-4776-b22c-e363652d74d2"
DATA_ACCESS_ADMIN = "8b54135c-b56d-4d72-a534-26097cfdc8d8"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMIN = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"

KV = "Microsoft.KeyVault/vaults/"
EXPECTED_ROLES: dict[str, tuple[str, set[str]]] = {
    ADMINISTRATOR: ("Key Vault Administrator", {KV + "*"}),
    CRYPTO_OFFICER: ("Key Vault Crypto Officer", {KV + "keys/*", KV + "keyrotationpolicies/*"}),
    CRYPTO_USER: (
        "Key Vault Crypto User",
        {KV + f"keys/{a}" for a in ("read",)}
        | {
            KV + f"keys/{a}/action"
            for a in ("update", "backup", "encrypt", "decrypt", "wrap", "unwrap", "sign", "verify")
        },
    ),
    ENCRYPTION_USER: (
        "Key Vault Crypto Service Encryption User",
        {KV + "keys/read", KV + "keys/wrap/action", KV + "keys/unwrap/action"},
    ),
    "08bbd89e-9f13-488c-ac41-acfcb10c90ab": ("Key Vault Crypto Service Release User", {KV + "keys/release/action"}),
    READER_KV: ("Key Vault Reader", {KV + "*/read", KV + "secrets/readMetadata/action"}),
    "4633458b-17de-408a-b874-0445c86b69e6": (
        "Key Vault Secrets User",
        {KV + "secrets/getSecret/action", KV + "secrets/readMetadata/action"},
    ),
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": ("Key Vault Secrets Officer", {KV + "secrets/*"}),
    "a4417e6f-fecd-4de8-b567-7b0420556985": (
        "Key Vault Certificates Officer",
        {KV + "certificatecas/*", KV + "certificates/*", KV + "certificatecontacts/write"},
    ),
    DATA_ACCESS_ADMIN: ("Key Vault Data Access Administrator", set()),
    OWNER: ("Owner", set()),
    CONTRIBUTOR: ("Contributor", set()),
    READER: ("Reader", set()),
    USER_ACCESS_ADMIN: ("User Access Administrator", set()),
}


def role_id(guid: str) -> str:
    return f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def principal() -> str:
    return str(uuid.uuid4())


class PrincipalCredential:
    """A TokenCredential whose unsigned JWT-shaped token names `oid`, like emulators/credential.py issues."""

    def __init__(self, oid: str) -> None:
        self.oid = oid

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        def part(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        expires = int(time.time()) + 3600
        claims = {"oid": self.oid, "tid": TENANT, "aud": "https://management.azure.com", "exp": expires}
        return AccessToken(f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.", expires)


@dataclass
class ArmUnderTest:
    state: ArmState
    grid: EventGrid
    loop: LoopThread
    clock: MovableClock
    base_url: str
    cert: str

    def client(self, oid: str | None = None) -> AuthorizationManagementClient:
        return AuthorizationManagementClient(
            PrincipalCredential(oid or principal()), SUB, base_url=self.base_url, connection_verify=self.cert
        )

    def receiver(self, **kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs)
        receiver.port = self.loop.serve(receiver.app())
        return receiver


@contextmanager
def running_arm(tmp_path: Path) -> Iterator[ArmUnderTest]:
    """ARM routes served over TLS on a free port, with an Event Grid delivering what ARM emits."""
    loop = LoopThread()
    clock = MovableClock()
    grid = EventGrid(
        clock=clock, topic_key="k", topic_id=f"{RG}/providers/Microsoft.EventGrid/topics/t", retry_scale=0.01
    )
    # Not a propagation test (tests/emulators/test_rbac_propagation.py): assignment changes apply at once.
    state = ArmState(events=grid, clock=clock, tenant_id=TENANT, subscription_id=SUB, rbac_propagation_max_seconds=0)
    cert = make_self_signed_cert(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert.cert_path, cert.key_path)
    app = web.Application()
    app.add_routes(arm_routes(state))
    port = loop.serve(app, tls)
    loop.run(grid.start())
    try:
        yield ArmUnderTest(state, grid, loop, clock, f"https://127.0.0.1:{port}", str(cert.cert_path))
    finally:
        loop.run(grid.stop())
        loop.close()


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[ArmUnderTest]:
    with running_arm(tmp_path) as running:
        yield running


# ------------------------------------------------------------------------------------------------- role definitions
def test_built_in_role_ids_and_data_actions_match_microsoft(arm: ArmUnderTest) -> None:
    client = arm.client()
    for guid, (name, data_actions) in EXPECTED_ROLES.items():
        definition = client.role_definitions.get(f"/subscriptions/{SUB}", guid)
        assert definition.role_name == name
        assert definition.role_type == "BuiltInRole"
        assert definition.id == role_id(guid)
        assert set(definition.permissions[0].data_actions) == data_actions, name
        assert definition.permissions[0].not_data_actions == []
    listed = list(client.role_definitions.list(VAULT, filter="roleName eq 'Key Vault Crypto Service Encryption User'"))
    assert [d.name for d in listed] == [ENCRYPTION_USER]
    with pytest.raises(ResourceNotFoundError):
        client.role_definitions.get(f"/subscriptions/{SUB}", str(uuid.uuid4()))


def test_control_plane_roles_grant_no_data_access(arm: ArmUnderTest) -> None:
    client = arm.client()
    owner = client.role_definitions.get(f"/subscriptions/{SUB}", OWNER).permissions[0]
    contributor = client.role_definitions.get(f"/subscriptions/{SUB}", CONTRIBUTOR).permissions[0]
    assert owner.actions == ["*"] and contributor.actions == ["*"]
    assert "Microsoft.Authorization/*/Write" in contributor.not_actions
    someone = principal()
    for guid in (OWNER, CONTRIBUTOR, USER_ACCESS_ADMIN):
        arm.state.add_role_assignment(f"/subscriptions/{SUB}", role_id(guid), someone)
    assert arm.state.data_actions(someone, KEY) == set()
    assert not arm.state.allows_data_action(someone, KEY, KV + "keys/unwrap/action")


def test_crypto_service_encryption_user_may_read_wrap_unwrap_only(arm: ArmUnderTest) -> None:
    identity = principal()
    arm.state.add_role_assignment(KEY, role_id(ENCRYPTION_USER), identity)
    allowed = {
        action
        for action in (
            "keys/read",
            "keys/wrap/action",
            "keys/unwrap/action",
            "keys/decrypt/action",
            "keys/encrypt/action",
            "keys/sign/action",
            "keys/create/action",
            "keys/delete",
            "keys/release/action",
            "keyrotationpolicies/write",
        )
        if arm.state.allows_data_action(identity, KEY, KV + action)
    }
    assert allowed == {"keys/read", "keys/wrap/action", "keys/unwrap/action"}


# --------------------------------------------------------------------------------------------- scope inheritance
@pytest.mark.parametrize(
    ("assigned_at", "applies_to_key", "applies_to_sibling"),
    [
        (KEY, True, False),
        (VAULT, True, True),
        (RG, True, True),
        (f"/subscriptions/{SUB}", True, True),
        (SIBLING_KEY, False, True),
        (OTHER_VAULT, False, False),
        (KEY.upper().replace("SUBSCRIPTIONS", "subscriptions"), True, False),  # ARM ids are case-insensitive
    ],
)
def test_data_actions_are_inherited_from_parent_scopes_only(
    arm: ArmUnderTest, assigned_at: str, applies_to_key: bool, applies_to_sibling: bool
) -> None:
    identity = principal()
    arm.state.add_role_assignment(assigned_at, role_id(CRYPTO_USER), identity)
    expected = EXPECTED_ROLES[CRYPTO_USER][1]
    assert arm.state.data_actions(identity, KEY) == (expected if applies_to_key else set())
    assert arm.state.data_actions(identity, SIBLING_KEY) == (expected if applies_to_sibling else set())
    assert arm.state.data_actions(principal(), KEY) == set()  # nobody else gains anything
    assert arm.state.not_data_actions(identity, KEY) == set()


def test_scope_prefix_counts_whole_segments_only(arm: ArmUnderTest) -> None:
    identity = principal()
    arm.state.add_role_assignment(VAULT, role_id(CRYPTO_USER), identity)  # "kv-one" is a prefix of "kv-one-dr"
    assert arm.state.data_actions(identity, f"{OTHER_VAULT}/keys/mysql-cmk") == set()
    assert arm.state.data_actions(identity, f"{RG}-2/providers/Microsoft.KeyVault/vaults/kv-one/keys/k") == set()
    assert arm.state.data_actions(identity, f"{VAULT}/keys/any") == EXPECTED_ROLES[CRYPTO_USER][1]


def test_data_actions_union_over_assignments(arm: ArmUnderTest) -> None:
    identity = principal()
    arm.state.add_role_assignment(KEY, role_id(ENCRYPTION_USER), identity)
    arm.state.add_role_assignment(VAULT, role_id(READER_KV), identity)
    assert arm.state.data_actions(identity, KEY) == EXPECTED_ROLES[ENCRYPTION_USER][1] | EXPECTED_ROLES[READER_KV][1]


# -------------------------------------------------------------------------------------- role assignments via SDK
def create(client: AuthorizationManagementClient, scope: str, guid: str, who: str, name: str | None = None) -> Any:
    parameters = RoleAssignmentCreateParameters(
        role_definition_id=role_id(guid), principal_id=who, principal_type="ServicePrincipal"
    )
    return client.role_assignments.create(scope, name or str(uuid.uuid4()), parameters)


def test_role_assignment_lifecycle_with_the_sdk(arm: ArmUnderTest) -> None:
    client = arm.client()
    identity, other = principal(), principal()
    on_key = create(client, KEY, ENCRYPTION_USER, identity)
    on_vault = create(client, VAULT, READER_KV, identity)
    on_sibling = create(client, SIBLING_KEY, CRYPTO_USER, other)
    on_rg = create(client, RG, READER, other)

    assert (
        on_key.scope == KEY
        and on_key.principal_id == identity
        and on_key.role_definition_id == role_id(ENCRYPTION_USER)
    )
    assert client.role_assignments.get(KEY, on_key.name).id == on_key.id
    assert client.role_assignments.get_by_id(on_key.id).principal_type == "ServicePrincipal"
    assert arm.state.allows_data_action(identity, KEY, KV + "keys/unwrap/action")

    at_key = {a.name for a in client.role_assignments.list_for_scope(KEY, filter="atScope()")}
    assert at_key == {on_key.name, on_vault.name, on_rg.name}
    at_vault = {a.name for a in client.role_assignments.list_for_scope(VAULT, filter="atScope()")}
    assert at_vault == {on_vault.name, on_rg.name}
    everything_below_rg = {a.name for a in client.role_assignments.list_for_scope(RG)}
    assert everything_below_rg == {on_key.name, on_vault.name, on_sibling.name, on_rg.name}
    mine = {a.name for a in client.role_assignments.list_for_scope(RG, filter=f"principalId eq '{identity}'")}
    assert mine == {on_key.name, on_vault.name}
    assert {a.name for a in client.role_assignments.list_for_subscription()} == everything_below_rg

    deleted = client.role_assignments.delete(KEY, on_key.name)
    assert deleted is not None and deleted.name == on_key.name
    assert client.role_assignments.delete(KEY, on_key.name) is None  # ARM answers 204 for a missing one
    assert not arm.state.allows_data_action(identity, KEY, KV + "keys/unwrap/action")
    with pytest.raises(ResourceNotFoundError):
        client.role_assignments.get(KEY, on_key.name)


def test_role_assignment_errors(arm: ArmUnderTest) -> None:
    client = arm.client()
    identity = principal()
    first = create(client, KEY, ENCRYPTION_USER, identity)
    with pytest.raises(ResourceExistsError) as exists:
        create(client, KEY, ENCRYPTION_USER, identity)
    assert exists.value.error.code == "RoleAssignmentExists" and first.name in exists.value.error.message
    assert create(client, KEY, ENCRYPTION_USER, identity, name=first.name).name == first.name  # idempotent re-PUT

    with pytest.raises(HttpResponseError) as unknown_role:
        create(client, KEY, str(uuid.uuid4()), identity)
    assert unknown_role.value.status_code == 400 and unknown_role.value.error.code == "RoleDefinitionDoesNotExist"
    with pytest.raises(HttpResponseError) as bad_principal:
        create(client, KEY, CRYPTO_USER, "not-a-guid")
    assert bad_principal.value.status_code == 400 and "principalId" in bad_principal.value.error.message
    with pytest.raises(HttpResponseError) as bad_name:
        create(client, KEY, CRYPTO_USER, identity, name="assignment-1")
    assert bad_name.value.status_code == 400
    with pytest.raises(ResourceExistsError):
        create(client, KEY, CRYPTO_USER, identity, name=first.name)  # cannot change the role of an assignment
    with pytest.raises(ResourceNotFoundError):
        create(client, f"/subscriptions/{uuid.uuid4()}", CRYPTO_USER, identity)


def test_lists_are_paged_with_absolute_next_links(arm: ArmUnderTest) -> None:
    arm.state.page_size = 2
    client = arm.client()
    names = {create(client, VAULT, CRYPTO_USER, principal()).name for _ in range(5)}
    assert {a.name for a in client.role_assignments.list_for_scope(VAULT, filter="atScope()")} == names

    pages = client.role_assignments.list_for_scope(VAULT, filter="atScope()").by_page()
    first = next(pages)
    assert len(list(first)) == 2 and pages.continuation_token.startswith(arm.base_url + "/")


def test_requests_need_a_bearer_token(arm: ArmUnderTest) -> None:
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=arm.cert)
    url = f"{arm.base_url}/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(url, context=context, timeout=10)
    assert missing.value.code == 401
    assert json.loads(missing.value.read())["error"]["code"] == "AuthenticationFailed"
    request = urllib.request.Request(url, headers={"Authorization": "Bearer not-a-token"})
    with pytest.raises(urllib.error.HTTPError) as malformed:
        urllib.request.urlopen(request, context=context, timeout=10)
    assert malformed.value.code == 401


# ----------------------------------------------------------------------------------------------------------- events
def test_role_assignment_writes_and_deletes_reach_a_webhook(arm: ArmUnderTest) -> None:
    receiver = arm.receiver()
    arm.grid.add_subscription({"name": "rbac", "endpoint": receiver.url, "topic": f"/subscriptions/{SUB}"})
    caller, assignee = principal(), principal()
    client = arm.client(caller)

    made = create(client, KEY, ENCRYPTION_USER, assignee)
    client.role_assignments.delete(KEY, made.name)
    made_at_subscription = create(client, f"/subscriptions/{SUB}", READER, assignee)

    notes = wait_for(lambda: len(receiver.notifications()) == 3 and receiver.notifications())
    events = {json.loads(n["body"])[0]["subject"] + json.loads(n["body"])[0]["eventType"]: n for n in notes}
    write = json.loads(events[made.id + "Microsoft.Resources.ResourceWriteSuccess"]["body"])[0]
    delete = json.loads(events[made.id + "Microsoft.Resources.ResourceDeleteSuccess"]["body"])[0]
    sub_write = json.loads(events[made_at_subscription.id + "Microsoft.Resources.ResourceWriteSuccess"]["body"])[0]

    assert write["topic"] == RG and sub_write["topic"] == f"/subscriptions/{SUB}"
    assert write["dataVersion"] == "2" and write["metadataVersion"] == "1"
    data = write["data"]
    assert data["operationName"] == "Microsoft.Authorization/roleAssignments/write"
    assert data["resourceProvider"] == "Microsoft.Authorization" and data["resourceUri"] == made.id
    assert data["authorization"]["scope"] == made.id and data["status"] == "Succeeded"
    assert data["subscriptionId"] == SUB and data["tenantId"] == TENANT
    assert data["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"] == caller
    assert "httpRequest" not in data  # Azure includes it for updates and deletes only
    assert delete["data"]["operationName"] == "Microsoft.Authorization/roleAssignments/delete"
    assert delete["data"]["httpRequest"]["method"] == "DELETE"
    for event in (write, delete):  # like Azure: nothing says which role or principal the assignment had
        assert assignee not in json.dumps(event) and ENCRYPTION_USER not in json.dumps(event)


def test_caller_rbac_when_enforced(arm: ArmUnderTest) -> None:
    arm.state.enforce_caller_rbac = True
    admin, stranger, assignee = principal(), principal(), principal()
    arm.state.add_role_assignment(VAULT, role_id(DATA_ACCESS_ADMIN), admin)

    made = create(arm.client(admin), KEY, ENCRYPTION_USER, assignee)
    with pytest.raises(HttpResponseError) as not_a_key_vault_role:
        create(arm.client(admin), KEY, OWNER, assignee)
    assert not_a_key_vault_role.value.status_code == 403
    with pytest.raises(HttpResponseError) as outside_scope:
        create(arm.client(admin), RG, CRYPTO_USER, assignee)
    assert outside_scope.value.status_code == 403
    with pytest.raises(HttpResponseError) as stranger_denied:
        arm.client(stranger).role_assignments.delete(KEY, made.name)
    assert stranger_denied.value.error.code == "AuthorizationFailed"

    write = next(e for e in arm.grid.events() if e["subject"] == made.id)
    assert write["data"]["authorization"]["evidence"]["role"] == "Key Vault Data Access Administrator"


# ------------------------------------------------------------------------------------------- snapshot and restore
def test_snapshot_restore_round_trip(arm: ArmUnderTest) -> None:
    identity = principal()
    arm.state.register_vault(VAULT)
    arm.state.add_role_assignment(KEY, role_id(ENCRYPTION_USER), identity)
    saved = json.loads(json.dumps(arm.state.snapshot()))

    arm.state.reset()
    assert arm.state.data_actions(identity, KEY) == set() and arm.state.role_assignments() == []
    assert arm.state.resource(VAULT) is not None  # registered vaults survive a reset

    arm.state.restore(saved)
    assert arm.state.snapshot() == saved
    assert arm.state.data_actions(identity, KEY) == EXPECTED_ROLES[ENCRYPTION_USER][1]
    listed = arm.client().role_assignments.list_for_scope(KEY, filter="atScope()")
    assert [a.principal_id for a in listed] == [identity]
