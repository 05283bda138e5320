"""A version no event announced (a Managed HSM sends none; an import may land while Event Grid is down): the sweep
moves its dependents as the KeyNewVersionCreated handler would, under the same per-version claim, so whichever comes
first acts and the other does nothing."""

from __future__ import annotations

from datetime import timedelta

from functions.rewrap import announce_claim_id, on_new_version
from functions.sweep_dependents import tend_dependents
from shared.errors import CmkError
from shared.events import KeyNewVersionCreated
from tests.unit.rewrap.test_rewrap import MYSQL, _assert_all_open_on, _drain, _drain_moves, _seed


def _sweep(world):
    outcomes = tend_dependents(
        inventory=world.inventory, vault=world.vault, dekstore=world.dekstore, rewrap_queue=world.rewrap_queue,
        move_queue=world.move_queue, consumers=world.consumers, claims=world.claims, audit=world.audit,
        alerts=world.alerts, clock=world.clock,
    )  # fmt: skip
    return next(o for o in outcomes if o.key == MYSQL)


def _import(world):
    """A new version with no event (the vault's import, Event Grid down)."""
    managed = world.key(MYSQL)
    world.clock.advance(timedelta(seconds=1))
    return world.vault.import_key(managed.ref, kty=managed.kty, size=managed.size, ops=managed.ops)


def test_the_sweep_alone_moves_the_deks_and_the_consumers_to_a_version_no_event_announced(world):
    plaintexts = _seed(world, MYSQL, 40)
    new = _import(world)
    outcome = _sweep(world)
    assert outcome.unannounced == new.version and outcome.resumed_shards == 16
    server = next(c for c in world.key(MYSQL).consumers if c.resource_id)
    assert outcome.moved == (server.resource_id,)
    record = next(r for r in world.audit.all() if r.action == "rewrap")  # the re-wrap started, by the sweep
    assert record.trigger == "timer:unannounced" and record.to_version == new.version
    _drain(world)
    _drain_moves(world)
    _assert_all_open_on(world, plaintexts, new.key_id)
    assert world.consumers.get_state(server.kind.value, server.resource_id).key_url == new.key_id
    # The event arrives late (Event Grid back up): the version is announced, it does nothing.
    late = on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    assert late.already == "already moved" and late.steps == ()
    assert not world.rewrap_queue.messages and not world.move_queue.messages
    assert _sweep(world).unannounced is None  # and later sweeps have nothing to announce


def test_when_the_event_came_first_the_sweep_does_not_announce_again(world):
    _seed(world, MYSQL, 10)
    new = _import(world)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    queued = len(world.rewrap_queue.messages)
    outcome = _sweep(world)
    assert outcome.unannounced is None
    assert len([r for r in world.audit.all() if r.action == "rewrap"]) == 1  # started once
    assert queued == 16


def test_a_version_with_nothing_behind_is_recorded_so_the_event_and_later_sweeps_do_nothing(world):
    managed = world.key(MYSQL)
    current = world.vault.get_key(managed.ref)
    assert _sweep(world).unannounced is None  # everything is on the current version already
    held = world.claims.get(announce_claim_id(managed.ref.vault_host, managed.name, current.version))
    assert held is not None and held.outcome == {"nothing_behind": True}
    assert not world.rewrap_queue.messages and not world.move_queue.messages


def test_a_failed_announcement_is_released_so_the_next_sweep_tries_again(world):
    _seed(world, MYSQL, 5)
    new = _import(world)

    def broken(message, **_):
        raise CmkError("queue: ServiceUnavailable")

    send, world.rewrap_queue.send = world.rewrap_queue.send, broken
    assert _sweep(world).unannounced == new.version  # it tried; the sweep goes on with the other keys
    world.rewrap_queue.send = send
    managed = world.key(MYSQL)
    assert world.claims.get(announce_claim_id(managed.ref.vault_host, managed.name, new.version)) is None
    assert _sweep(world).unannounced == new.version
