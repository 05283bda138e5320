"""M7: a shred cannot be undone by a new version, and a revocation is not `verified` (nor left unwatched) while the
subject keeps key use another way."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

from functions.compliance.report import report_keys
from functions.revocation import check_revocation, restore, revoke
from functions.revocation.check import CONSUMER_GRACE
from functions.sweep import run_sweep
from shared import roles
from shared.http.commands import RestoreCommand, RevokeCommand
from shared.inventory import Mode
from shared.model import RotationActionType
from shared.revocation import RevocationState
from tests.fakes.outbound import FakeWorkQueue

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"
PROPAGATION = timedelta(seconds=600)


def _ports(world, checks) -> dict:
    return world.revocation_ports(checks, follow_up_delay=3)


def _shred(world, checks, key=AKS):
    command = RevokeCommand(key, "disable-key", "drill", "alice", dry_run=False, confirm=key)
    outcome = revoke(command, **_ports(world, checks))
    assert outcome.status == "executed", outcome
    return outcome.revocation


def _rotates(world, key: str) -> bool:
    policy = world.vault.get_rotation_policy(world.key(key).ref)
    return any(a.action == RotationActionType.ROTATE for a in policy.actions)


def _settled_check(world, checks):
    world.clock.advance(PROPAGATION + max(CONSUMER_GRACE.values()) + timedelta(seconds=1))
    ports = {k: v for k, v in _ports(world, checks).items() if k != "vault_settings"}
    return check_revocation(checks.drain()[-1], **ports, rbac_propagation=PROPAGATION)


def test_a_shred_makes_the_rotation_policy_notify_only_and_restoration_puts_the_inventorys_back(world):
    checks = FakeWorkQueue()
    assert _rotates(world, AKS)
    revocation = _shred(world, checks)
    assert not _rotates(world, AKS)
    ports = {
        k: v for k, v in _ports(world, checks).items() if k not in ("roles", "vault_settings", "consumers", "dekstore")
    }
    restored = restore(RestoreCommand(revocation.revocation_id, "drill over", "bob"), **ports)
    assert restored.status == "restored"
    wanted = world.key(AKS).rotation.to_policy()
    got = world.vault.get_rotation_policy(world.key(AKS).ref)
    assert [a for a in got.actions if a.action == RotationActionType.ROTATE] == [
        a for a in wanted.actions if a.action == RotationActionType.ROTATE
    ]


def test_the_sweep_never_gives_a_shredded_key_its_rotate_action_back(world):
    checks = FakeWorkQueue()
    _shred(world, checks)
    run_sweep(**world.sweep_ports())
    assert not _rotates(world, AKS)


def test_a_shredded_key_with_an_enabled_version_is_a_critical_finding(world):
    checks = FakeWorkQueue()
    _shred(world, checks)

    def report():
        return report_keys(**world.ports(), revocations=world.revocations)

    assert not [f for f in report().findings if f.code == "ShreddedKeyEnabled"]
    version = world.vault.list_versions(world.key(AKS).ref)[-1].version
    world.vault.update_version(world.key(AKS).ref, version, enabled=True)
    found = [f for f in report().findings if f.code == "ShreddedKeyEnabled"]
    assert len(found) == 1 and found[0].severity.value == "critical" and version in found[0].message


def test_the_sweep_alerts_when_a_revoked_principal_regains_key_use(world):
    world.inventory = dataclasses.replace(world.inventory, mode=Mode.AUDIT)
    checks = FakeWorkQueue()
    app = str(uuid.uuid4())
    world.grant(world.key(MYSQL).scope, app, roles.CRYPTO_USER)
    command = RevokeCommand(MYSQL, "revoke-access", "drill", "alice", principal_id=app, dry_run=False)
    assert revoke(command, **_ports(world, checks)).status == "executed"
    world.alerts.published.clear()
    run_sweep(**world.sweep_ports())
    assert not [a for a in world.alerts.published if a.type == "CmkGuardian.Revocation.NotInForce"]
    world.grant(world.inventory.vaults[0].resource_id, app, roles.CRYPTO_USER)  # inherited, from the vault
    run_sweep(**world.sweep_ports())
    broken = [a for a in world.alerts.published if a.type == "CmkGuardian.Revocation.NotInForce"]
    assert len(broken) == 1 and broken[0].severity.value == "critical" and app in broken[0].message


def test_a_revoke_access_is_not_verified_while_an_inherited_grant_gives_the_subject_key_use(world):
    checks = FakeWorkQueue()
    app = str(uuid.uuid4())
    world.grant(world.key(MYSQL).scope, app, roles.CRYPTO_USER)
    command = RevokeCommand(MYSQL, "revoke-access", "drill", "alice", principal_id=app, dry_run=False)
    assert revoke(command, **_ports(world, checks)).status == "executed"
    world.grant(world.inventory.vaults[0].resource_id, app, roles.CRYPTO_USER)
    outcome = _settled_check(world, checks)
    assert outcome.status == "failed" and any("inherited" in d for d in outcome.detail)


def test_a_revoke_access_is_not_verified_while_a_group_grant_may_give_the_subject_key_use(world):
    checks = FakeWorkQueue()
    app = str(uuid.uuid4())
    world.grant(world.key(MYSQL).scope, app, roles.CRYPTO_USER)
    command = RevokeCommand(MYSQL, "revoke-access", "drill", "alice", principal_id=app, dry_run=False)
    revocation = revoke(command, **_ports(world, checks)).revocation
    group = str(uuid.uuid4())
    world.access.create_assignment(world.key(MYSQL).scope, world.role_id(roles.CRYPTO_USER), group, "Group")
    outcome = _settled_check(world, checks)
    assert outcome.status == "failed" and any("group" in d for d in outcome.detail)
    assert world.revocations.get(revocation.revocation_id).state is RevocationState.FAILED
