"""Rotation over fakes: every trigger converges on one new version per due version, decided from state.

Paths: the sweep (age, notify window, expiry), duplicates, out-of-order and superseded events, the vault rotating by
itself, expiry, an operator's request and its dedupe, failure and retry, a crashed holder, concurrency, policies.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from functions.rotation.rotate import (
    CLAIM_TTL,
    EXPIRED_ALERT,
    FAILED_ALERT,
    ROTATED_ALERT,
    SUPERSEDED_ALERT,
    RotationStatus,
    rotate_from,
    rotation_due,
)
from functions.rotation.triggers import OPERATOR_DEDUPE_WINDOW, on_expired, on_near_expiry, rotate_now
from functions.sweep import run_sweep
from shared.coordination.claims import rotation_claim_id
from shared.errors import ServiceUnavailable
from shared.events import KeyExpired, KeyNearExpiry
from shared.http.commands import RotateCommand
from shared.inventory import UnknownKey
from shared.model import Severity

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"


def _versions(world, name: str) -> list:
    return world.vault.list_versions(world.key(name).ref)


def _current(world, name: str):
    return world.vault.get_key(world.key(name).ref)


def test_nothing_is_due_on_a_fresh_deployment(world):
    outcome = run_sweep(**world.sweep_ports())
    assert outcome.rotations == () and outcome.policies == ()
    assert [len(_versions(world, k.name)) for k in world.inventory.keys] == [1, 1]
    assert world.audit.all() == []


@pytest.mark.parametrize(
    ("days", "due", "emergency"),
    [(80, False, False), (91, True, False), (151, True, False), (181, True, True)],
    ids=["young", "past-rotate-after", "notify-window", "expired"],
)
def test_the_decision_for_the_sweep(world, days, due, emergency):
    world.clock.advance(timedelta(days=days))
    decision = rotation_due(world.key(AKS), _current(world, AKS), world.clock.now())
    assert (decision.due, decision.emergency) == (due, emergency)


def test_the_sweep_rotates_a_key_past_rotate_after_once(world):
    old = _current(world, AKS).version
    world.clock.advance(timedelta(days=91))
    first = run_sweep(**world.sweep_ports())
    assert {(o.key, o.status) for o in first.rotations} == {
        (AKS, RotationStatus.ROTATED),
        (MYSQL, RotationStatus.ROTATED),
    }
    new = _current(world, AKS)
    assert new.version != old and new.expires == new.created + timedelta(days=180)
    assert sorted(new.ops) == ["unwrapKey", "wrapKey"]
    assert _current(world, MYSQL).expires is None  # a MySQL key never gets an expiry
    again = run_sweep(**world.sweep_ports())
    assert again.rotations == ()
    assert [len(_versions(world, k.name)) for k in world.inventory.keys] == [2, 2]
    rotated = [a for a in world.alerts.published if a.type == ROTATED_ALERT]
    assert {a.data["key"] for a in rotated} == {AKS, MYSQL} and {a.severity for a in rotated} == {Severity.INFO}
    record = next(r for r in world.audit.all() if r.key == AKS)
    assert (record.trigger, record.outcome, record.from_version, record.to_version) == (
        "timer",
        "rotated",
        old,
        new.version,
    )
    assert rotated[0].data["audit_id"] in {r.record_id for r in world.audit.all()}


def test_an_expired_current_version_is_rotated_at_once_with_a_critical_alert(world):
    world.clock.advance(timedelta(days=181))
    version = _current(world, AKS).version
    outcome = on_expired(world.key_event(KeyExpired, AKS, version), **world.rotation_ports())
    assert outcome.status is RotationStatus.ROTATED and outcome.alert.type == EXPIRED_ALERT
    assert outcome.alert.severity is Severity.CRITICAL
    assert _current(world, AKS).version == outcome.to_version


def test_duplicate_near_expiry_events_make_one_version(world):
    version = _current(world, AKS).version
    event = world.key_event(KeyNearExpiry, AKS, version)
    first = on_near_expiry(event, **world.rotation_ports())
    second = on_near_expiry(event, **world.rotation_ports())
    assert first.status is RotationStatus.ROTATED
    assert second.status is RotationStatus.SUPERSEDED and second.to_version == first.to_version
    assert len(_versions(world, AKS)) == 2


def test_near_expiry_for_an_old_version_after_the_new_one_is_superseded(world):
    old = _current(world, AKS).version
    rotated = on_near_expiry(world.key_event(KeyNearExpiry, AKS, old), **world.rotation_ports())
    world.alerts.published.clear()
    late = on_near_expiry(world.key_event(KeyNearExpiry, AKS, old), **world.rotation_ports())
    assert late.status is RotationStatus.SUPERSEDED and "superseded" in late.reason
    assert [(a.type, a.severity) for a in world.alerts.published] == [(SUPERSEDED_ALERT, Severity.INFO)]
    assert world.alerts.published[0].data["new_version"] == rotated.to_version
    assert len(_versions(world, AKS)) == 2


def test_a_version_the_vault_made_itself_counts_as_the_rotation(world):
    managed = world.key(AKS)
    old = _current(world, AKS).version
    world.clock.advance(timedelta(seconds=1))
    world.vault.rotate_key(managed.ref)  # the vault's own policy, at the same moment as our event
    outcome = on_near_expiry(world.key_event(KeyNearExpiry, AKS, old), **world.rotation_ports())
    assert outcome.status is RotationStatus.SUPERSEDED
    assert len(_versions(world, AKS)) == 2


def test_the_vault_rotating_between_the_claim_and_the_create_is_seen(world):
    """rotate_from re-reads the key after taking its claim, so a version made meanwhile is the rotation."""
    managed = world.key(AKS)
    old = _current(world, AKS).version
    world.vault.rotate_key(managed.ref)
    outcome = rotate_from(managed, old, trigger="timer", reason="test", **world.rotation_ports())
    assert outcome.status is RotationStatus.ALREADY_ROTATED and outcome.to_version == _current(world, AKS).version
    assert len(_versions(world, AKS)) == 2
    assert world.claims.get(rotation_claim_id(managed.ref.vault_host, AKS, old)).outcome["by"] == "observed"


def test_an_expired_event_for_an_old_version_does_nothing(world):
    old = _current(world, AKS).version
    on_near_expiry(world.key_event(KeyNearExpiry, AKS, old), **world.rotation_ports())
    world.alerts.published.clear()
    outcome = on_expired(world.key_event(KeyExpired, AKS, old), **world.rotation_ports())
    assert outcome.status is RotationStatus.SUPERSEDED and world.alerts.published == []
    assert len(_versions(world, AKS)) == 2


def test_an_operator_rotation_and_its_identical_repeat(world):
    old = _current(world, MYSQL).version
    command = RotateCommand(MYSQL, "suspected exposure of a backup", caller="alice@example.org")
    first = rotate_now(command, inventory=world.inventory, **world.rotation_ports())
    assert first.status is RotationStatus.ROTATED and first.from_version == old
    assert first.trigger == "operator:alice@example.org"
    world.clock.advance(timedelta(minutes=5))
    again = rotate_now(
        RotateCommand(MYSQL, "  Suspected exposure of a backup ", caller="bob"),
        inventory=world.inventory,
        **world.rotation_ports(),
    )
    assert again.status is RotationStatus.ALREADY_ROTATED
    assert (again.from_version, again.to_version) == (old, first.to_version)
    assert len(_versions(world, MYSQL)) == 2
    world.clock.advance(OPERATOR_DEDUPE_WINDOW)
    later = rotate_now(command, inventory=world.inventory, **world.rotation_ports())
    assert later.status is RotationStatus.ROTATED and later.from_version == first.to_version
    other = rotate_now(RotateCommand(MYSQL, "another reason"), inventory=world.inventory, **world.rotation_ports())
    assert other.status is RotationStatus.ROTATED
    assert len(_versions(world, MYSQL)) == 4


def test_an_operator_naming_an_unknown_key_gets_unknown_key_and_nothing_changes(world):
    with pytest.raises(UnknownKey):
        rotate_now(RotateCommand("no-such-key", "x"), inventory=world.inventory, **world.rotation_ports())
    assert world.audit.all() == [] and [len(_versions(world, k.name)) for k in world.inventory.keys] == [1, 1]


class FlakyCreates:
    """The fake vault, failing its next `n` version creations as a 503 would."""

    def __init__(self, vault, n: int) -> None:
        self._vault, self.failures = vault, n

    def __getattr__(self, name):
        return getattr(self._vault, name)

    def _maybe_fail(self):
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailable("vault unavailable")

    def rotate_key(self, key):
        self._maybe_fail()
        return self._vault.rotate_key(key)

    def create_key(self, key, **kwargs):
        self._maybe_fail()
        return self._vault.create_key(key, **kwargs)


def test_a_failed_rotation_alerts_releases_its_claim_and_the_retry_rotates_once(world):
    version = _current(world, AKS).version
    ports = {**world.rotation_ports(), "vault": FlakyCreates(world.vault, 1)}
    event = world.key_event(KeyNearExpiry, AKS, version)
    with pytest.raises(ServiceUnavailable):
        on_near_expiry(event, **ports)  # raised after recording, so Event Grid redelivers
    assert [(a.type, a.severity) for a in world.alerts.published] == [(FAILED_ALERT, Severity.HIGH)]
    assert [r.outcome for r in world.audit.all()] == ["failed"]
    retried = on_near_expiry(event, **ports)
    assert retried.status is RotationStatus.ROTATED and len(_versions(world, AKS)) == 2


def test_a_crashed_holder_blocks_until_its_claim_expires_then_the_sweep_finishes_once(world):
    managed = world.key(AKS)
    version = _current(world, AKS).version
    world.clock.advance(timedelta(days=91))
    crashed = world.claims.claim(
        rotation_claim_id(managed.ref.vault_host, AKS, version), "crashed", now=world.clock.now(), ttl=CLAIM_TTL
    )
    assert crashed.taken
    during = run_sweep(**world.sweep_ports())
    assert {o.key: o.status for o in during.rotations}[AKS] is RotationStatus.IN_PROGRESS
    assert len(_versions(world, AKS)) == 1
    world.clock.advance(CLAIM_TTL)
    after = run_sweep(**world.sweep_ports())
    assert {o.key: o.status for o in after.rotations}.get(AKS) is RotationStatus.ROTATED
    run_sweep(**world.sweep_ports())
    assert len(_versions(world, AKS)) == 2


def test_eight_threads_rotating_the_same_version_make_one_version(world):
    managed = world.key(AKS)
    version = _current(world, AKS).version
    barrier = threading.Barrier(8)
    statuses = []

    def rotate():
        barrier.wait()
        statuses.append(rotate_from(managed, version, trigger="timer", reason="race", **world.rotation_ports()).status)

    threads = [threading.Thread(target=rotate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(RotationStatus.ROTATED) == 1
    assert set(statuses) <= {RotationStatus.ROTATED, RotationStatus.IN_PROGRESS, RotationStatus.ALREADY_ROTATED}
    assert len(_versions(world, AKS)) == 2


def test_a_mysql_key_whose_policy_would_stamp_an_expiry_is_created_without_one(world):
    from shared.model import LifetimeAction, RotationActionType, RotationPolicy

    managed = world.key(MYSQL)
    world.vault.set_rotation_policy(
        managed.ref, RotationPolicy("P180D", (LifetimeAction(RotationActionType.ROTATE, "P90D", None),))
    )
    outcome = rotate_from(
        managed, _current(world, MYSQL).version, trigger="timer", reason="t", **world.rotation_ports()
    )
    assert outcome.status is RotationStatus.ROTATED and _current(world, MYSQL).expires is None


def test_ops_the_service_got_wrong_are_corrected(world):
    managed = world.key(AKS)
    world.vault.update_version(managed.ref, _current(world, AKS).version, ops=("wrapKey", "unwrapKey", "decrypt"))
    outcome = rotate_from(managed, _current(world, AKS).version, trigger="timer", reason="t", **world.rotation_ports())
    assert outcome.status is RotationStatus.ROTATED
    assert sorted(_current(world, AKS).ops) == ["unwrapKey", "wrapKey"]
    assert "ops" in world.audit.all()[-1].detail["corrections"][0]


def test_enforce_mode_gives_a_key_the_inventorys_policy_and_audit_mode_only_reports(world):
    import dataclasses

    from shared.inventory import Mode

    aks = world.key(AKS)
    world.vault._key(aks.ref).policy = None  # never had one
    outcome = run_sweep(**world.sweep_ports())
    assert [(p.key, p.status) for p in outcome.policies] == [(AKS, "set")]
    assert world.vault.has_rotate_action(aks.ref)
    assert "RotationPolicyMissing" not in {f.code for f in outcome.report.findings}
    assert run_sweep(**world.sweep_ports()).policies == ()  # the default Notify the service adds is not drift
    world.vault._key(aks.ref).policy = None
    world.inventory = dataclasses.replace(world.inventory, mode=Mode.AUDIT)
    audited = run_sweep(**world.sweep_ports())
    assert [(p.key, p.status) for p in audited.policies] == [(AKS, "differs")]
    assert not world.vault.has_rotate_action(aks.ref)


def test_a_sweep_paces_its_creations_under_the_hsm_limit(world):
    import dataclasses

    from shared.inventory import parse_inventory  # noqa: F401  (the world's inventory is reused, keys cloned)

    many = tuple(dataclasses.replace(world.key(AKS), name=f"k{i:02d}") for i in range(12))
    world.inventory = dataclasses.replace(world.inventory, keys=many)
    for k in many:
        world.vault.create_key(
            k.ref, kty=k.kty, size=k.size, ops=k.ops, expires=k.rotation.expiry_for(world.clock.now())
        )
        world.vault.set_rotation_policy(k.ref, k.rotation.to_policy())
        world.grant(k.scope, k.identity.principal_id, k.role)
    world.clock.advance(timedelta(days=91))
    outcome = run_sweep(**world.sweep_ports())
    assert [o.status for o in outcome.rotations] == [RotationStatus.ROTATED] * 12
    # 5 at once, then one every 2 s: 7 waits of 2 s, never more than 5 creations in any 10 s.
    assert world.slept == pytest.approx([2.0] * 7)


class CountingVault:
    def __init__(self, vault) -> None:
        self._vault, self.calls = vault, 0

    def __getattr__(self, name):
        attr = getattr(self._vault, name)
        if callable(attr):

            def counted(*args, **kwargs):
                self.calls += 1
                return attr(*args, **kwargs)

            return counted
        return attr


def test_a_sweep_with_nothing_due_costs_two_key_vault_calls_per_key(world):
    counting = CountingVault(world.vault)
    run_sweep(**{**world.sweep_ports(), "vault": counting})
    assert counting.calls == 2 * len(world.inventory.keys)
