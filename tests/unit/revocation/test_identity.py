"""A revocation of a service revokes the identity that service really uses (ARM's), not only the one the inventory
names: the plan reads the consumers' state and names both when they differ."""

from __future__ import annotations

import uuid
from datetime import timedelta

from functions.revocation import revoke
from shared import roles
from shared.http.commands import RevokeCommand
from shared.model import ConsumerKind
from tests.fakes.outbound import FakeWorkQueue

MYSQL = "mysql-encryption-key"


def _ports(world) -> dict:
    return world.revocation_ports(FakeWorkQueue(), follow_up_delay=600)


def _moved(world) -> tuple[str, object]:
    key = world.key(MYSQL)
    [server] = key.consumers_of(ConsumerKind.MYSQL_FLEXIBLE_SERVER)
    second = str(uuid.uuid4())
    grant = world.grant(key.scope, second, roles.CRYPTO_SERVICE_ENCRYPTION_USER)
    world.consumers.use_identity(server.kind.value, server.resource_id, second)
    return second, grant


def _revoke(world, **fields):
    base = {"key": MYSQL, "action": "revoke-access", "reason": "incident", "caller": "alice", "service": "mysql"}
    command = RevokeCommand(**{**base, **fields})
    return revoke(command, **_ports(world))


def test_the_plan_of_a_services_revocation_names_the_identity_it_really_uses_and_the_inventorys(world):
    second, grant = _moved(world)
    plan = _revoke(world).plan
    assert plan.principal_id == second
    assert plan.inventory_principal_id == world.key(MYSQL).identity.principal_id
    assert [a.assignment_id for a in plan.remove] == [grant.id]
    assert any("really use" in n for n in plan.notes)
    assert any(loss.kind == ConsumerKind.MYSQL_FLEXIBLE_SERVER.value for loss in plan.losses)
    assert plan.to_json()["inventory_principal_id"] == world.key(MYSQL).identity.principal_id


def test_executing_it_revokes_the_real_identity(world):
    second, grant = _moved(world)
    outcome = _revoke(world, dry_run=False)
    assert outcome.revocation.principal_id == second
    assert grant.id.lower() not in {a.id.lower() for a in world.access.all()}
    assert second in world.revocations.revoked(MYSQL)


def test_revoking_an_identity_no_consumer_uses_names_no_consumer_loss(world):
    _moved(world)
    inventory_identity = world.key(MYSQL).identity.principal_id
    plan = _revoke(world, service=None, principal_id=inventory_identity).plan
    assert plan.principal_id == inventory_identity and plan.inventory_principal_id is None
    assert [loss.kind for loss in plan.losses] == ["principal"]


def test_when_the_identities_agree_nothing_changes(world):
    plan = _revoke(world).plan
    assert plan.principal_id == world.key(MYSQL).identity.principal_id and plan.inventory_principal_id is None


def _check(world, checks: FakeWorkQueue):
    from functions.revocation import check_revocation

    ports = {k: v for k, v in _ports(world).items() if k != "vault_settings"}
    return check_revocation(
        checks.drain()[-1], **{**ports, "revocation_checks": checks, "rbac_propagation": timedelta(seconds=600)}
    )


def test_its_verification_waits_for_the_consumer_that_really_used_the_revoked_identity(world):
    _moved(world)
    checks = FakeWorkQueue()
    ports = {**_ports(world), "revocation_checks": checks}
    base = {"key": MYSQL, "action": "revoke-access", "reason": "incident", "caller": "alice", "service": "mysql"}
    revoke(RevokeCommand(**base, dry_run=False), **ports)
    assert _check(world, checks).status == "rescheduled"  # the server still reports itself available
    [server] = world.key(MYSQL).consumers_of(ConsumerKind.MYSQL_FLEXIBLE_SERVER)
    world.consumers.set_available(server.kind.value, server.resource_id, False, "Inaccessible")
    assert _check(world, checks).status == "verified"


def test_revoking_the_inventory_identity_no_consumer_uses_does_not_wait_for_the_consumers(world):
    _moved(world)
    checks = FakeWorkQueue()
    ports = {**_ports(world), "revocation_checks": checks}
    base = {"key": MYSQL, "action": "revoke-access", "reason": "incident", "caller": "alice"}
    revoke(RevokeCommand(**base, principal_id=world.key(MYSQL).identity.principal_id, dry_run=False), **ports)
    assert _check(world, checks).status == "verified"  # its server uses another identity and stays available
