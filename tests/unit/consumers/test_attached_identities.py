"""An operator moving a MySQL server to another user-assigned identity grants that identity first, then moves the
server (a move to an identity without access fails in Azure). Between the two steps the identity is attached to the
server but not yet used: reconcile must leave its key use alone, or the move that follows locks the server out."""

from __future__ import annotations

import uuid

from functions.access.plan import RemoveAssignment, Report
from functions.access.reconcile import reconcile_key
from shared import roles
from shared.azure.consumers import state_from_arm
from shared.model import ConsumerKind

MYSQL = "mysql-encryption-key"
RG = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg"
SERVER = f"{RG}/providers/Microsoft.DBforMySQL/flexibleServers/mysql-1"
UAMI_1 = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-one"
UAMI_2 = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-two"
P1, P2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
KEY = "https://kv.vault.azure.net/keys/k/" + "a" * 32


def _reconcile(world):
    ports = {**world.access_ports(), "access_checks": world.access_checks, "follow_up_delay": 3}
    return reconcile_key(world.key(MYSQL), trigger="test", **ports)


def _ids(world) -> set[str]:
    return {a.id.lower() for a in world.access.list_assignments(world.key(MYSQL).scope)}


def _server(world):
    [server] = world.key(MYSQL).consumers_of(ConsumerKind.MYSQL_FLEXIBLE_SERVER)
    return server


def test_arm_lists_every_user_assigned_identity_attached_to_a_server():
    attached = {UAMI_1: {"principalId": P1}, UAMI_2: {"principalId": P2.upper()}}
    document = {
        "identity": {"type": "UserAssigned", "userAssignedIdentities": attached},
        "properties": {"dataEncryption": {"primaryKeyURI": KEY, "primaryUserAssignedIdentityId": UAMI_1}},
    }
    state = state_from_arm(ConsumerKind.MYSQL_FLEXIBLE_SERVER, SERVER, document)
    assert state.identities == (P1,) and state.attached_identities == (P1, P2)


def test_a_grant_to_an_identity_attached_to_the_server_is_kept_and_reported(world):
    server, second = _server(world), str(uuid.uuid4())
    grant = world.grant(world.key(MYSQL).scope, second, roles.CRYPTO_SERVICE_ENCRYPTION_USER)
    world.consumers.attach_identity(server.kind.value, server.resource_id, second)
    outcome = _reconcile(world)
    assert grant.id.lower() in _ids(world)
    [report] = [s for s in outcome.plan.steps if isinstance(s, Report) and s.principal_id == second]
    assert "attached to" in report.reason
    assert not [s for s in outcome.plan.steps if isinstance(s, RemoveAssignment)]


def test_the_same_grant_goes_when_the_identity_is_not_attached(world):
    """The control: a stranger's grant of key use is removed as before."""
    stranger = str(uuid.uuid4())
    grant = world.grant(world.key(MYSQL).scope, stranger, roles.CRYPTO_SERVICE_ENCRYPTION_USER)
    _reconcile(world)
    assert grant.id.lower() not in _ids(world)


def test_an_attached_identity_revoked_on_purpose_loses_its_grant(world):
    server, second = _server(world), str(uuid.uuid4())
    grant = world.grant(world.key(MYSQL).scope, second, roles.CRYPTO_SERVICE_ENCRYPTION_USER)
    world.consumers.attach_identity(server.kind.value, server.resource_id, second)
    world.revocations.revoke(MYSQL, second, at=world.clock.now())
    _reconcile(world)
    assert grant.id.lower() not in _ids(world)
