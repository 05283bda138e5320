"""Which DEKs the retirement guard, the resume and the re-wrap see and move, however a key id is spelled (M6), when
the registry cannot be read (H4), and when a newer version's re-wrap overtakes a page (L2)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.rewrap.messages import RewrapMessage
from functions.rewrap.worker import rewrap_page
from functions.rotation.retirement import retire_unused_versions
from functions.sweep import run_sweep
from tests.unit.rewrap.test_rewrap import (
    AKS,
    MYSQL,
    _assert_all_open_on,
    _drain,
    _rotate,
    _seed,
    _with_retirement,
    _worker_ports,
)


def _vault_url_rewritten(world, url_of) -> None:
    """The inventory's vault URL edited into an equivalent form (the same vault, as Azure resolves it)."""
    import dataclasses

    vaults = {v.name: dataclasses.replace(v, url=url_of(v.url)) for v in world.inventory.vaults}
    keys = tuple(dataclasses.replace(k, vault=vaults[k.vault.name]) for k in world.inventory.keys)
    world.inventory = dataclasses.replace(world.inventory, vaults=tuple(vaults.values()), keys=keys)


@pytest.mark.parametrize(
    "url_of",
    [
        lambda url: url.rstrip("/").upper().replace("HTTPS", "https") + ":443/",
        lambda url: url.replace(".vault.azure.net", ".privatelink.vaultcore.azure.net"),
    ],
    ids=["default-port", "private-link"],
)
def test_an_equivalent_vault_url_still_sees_the_deks_behind_for_retirement_and_resume(world, url_of):
    """M6, the review's scenario: DEKs written under `https://kv...net`, then the inventory says `https://kv...net:443`
    (or the private-link alias). A DEK left on the old version (a lost fan-out) must still block retirement and be
    resumed by the sweep, not counted as zero and disabled under it."""
    _with_retirement(world)
    plaintexts = _seed(world, MYSQL, 3)
    old = world.vault.get_key(world.key(MYSQL).ref)
    new = _rotate(world, MYSQL)  # the event was lost: nobody fanned out
    _vault_url_rewritten(world, url_of)
    world.clock.advance(timedelta(days=31))
    retire = {
        "vault": world.vault, "dekstore": world.dekstore, "consumers": world.consumers, "audit": world.audit,
        "alerts": world.alerts, "clock": world.clock,
    }  # fmt: skip
    [decision] = retire_unused_versions(world.key(MYSQL), enforce=True, **retire)
    assert not decision.allowed and "3 DEK(s) depend on it" in decision.blockers
    assert world.vault.get_key(world.key(MYSQL).ref, old.version).enabled
    first = run_sweep(**world.sweep_ports())
    assert next(d for d in first.dependents if d.key == MYSQL).resumed_shards == 16
    _drain(world)
    for (partition, dek_id), original in plaintexts.items():
        dek = world.dekstore.get(partition, dek_id)
        assert dek.key_version == new.version
        assert world.vault.unwrap_key(dek.key_id, dek.wrapped, dek.algorithm) == original


def test_an_unreadable_dek_registry_blocks_retirement(world):
    """H4's other half: not knowing is never permission. A registry that cannot be read blocks every old version."""
    from shared.errors import ServiceUnavailable

    class Unreadable:
        def shard_counts(self, key):
            raise ServiceUnavailable("the DEK table cannot be read")

        def probe(self, key_id):
            raise ServiceUnavailable("the DEK table cannot be read")

    _with_retirement(world)
    old = world.vault.get_key(world.key(AKS).ref)
    _rotate(world, AKS)
    world.clock.advance(timedelta(days=31))
    [decision] = retire_unused_versions(
        world.key(AKS), enforce=True, vault=world.vault, dekstore=Unreadable(), consumers=world.consumers,
        audit=world.audit, alerts=world.alerts, clock=world.clock,
    )  # fmt: skip
    assert not decision.allowed and "the DEK registry could not be read" in decision.blockers
    assert world.vault.get_key(world.key(AKS).ref, old.version).enabled


def test_retirement_reads_counters_and_one_probe_and_blocks_on_a_dek_the_counters_missed(world):
    """The guard never scans: counters, then one bounded probe per version they count nothing on. A DEK the counters
    missed (here: its counter wiped behind the store's back) blocks through the probe; a probe that fails blocks."""
    import dataclasses

    from functions.rewrap.fan_out import on_new_version
    from shared.errors import ServiceUnavailable
    from shared.events import KeyNewVersionCreated
    from tests.unit.rewrap.test_rewrap import _drain, _drain_moves

    _with_retirement(world)
    key = world.key(MYSQL)
    _seed(world, MYSQL, 5)
    old = world.vault.get_key(key.ref)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    _drain(world)
    _drain_moves(world)
    # one row put back on the old version behind the counters' back
    k, row = next((k, r) for k, r in world.dekstore._rows.items() if r.key_id == new.key_id)
    world.dekstore._rows[k] = dataclasses.replace(row, key_id=old.key_id)
    world.clock.advance(timedelta(days=31))
    scans = []
    world.dekstore.count_by_key_id = lambda ref: scans.append(ref) or {}
    [decision] = retire_unused_versions(
        key, enforce=True, vault=world.vault, dekstore=world.dekstore, consumers=world.consumers,
        audit=world.audit, alerts=world.alerts, clock=world.clock,
    )  # fmt: skip
    assert not decision.allowed and "counters missed" in decision.blockers[0]
    assert world.vault.get_key(key.ref, old.version).enabled and scans == []

    def unprobeable(key_id):
        raise ServiceUnavailable("no")

    world.dekstore.probe = unprobeable
    [decision] = retire_unused_versions(
        key, enforce=False, vault=world.vault, dekstore=world.dekstore, consumers=world.consumers,
        audit=world.audit, alerts=world.alerts, clock=world.clock,
    )  # fmt: skip
    assert decision.blockers == ("the DEK registry could not be probed",)


class _OvertakenOnce:
    """A DEK store whose first replace of `dek_id` is overtaken: right before it lands, `overtake()` runs (a rotation
    and the newer version's re-wrap of that DEK), so the replace meets a changed ETag (412), as in a real race."""

    def __init__(self, store, dek_id: str, overtake) -> None:
        self._store, self._dek_id, self._overtake, self.fired = store, dek_id, overtake, False

    def __getattr__(self, name):
        return getattr(self._store, name)

    def replace(self, dek):
        if dek.dek_id == self._dek_id and not self.fired:
            self.fired = True
            self._overtake()
        return self._store.replace(dek)

    def replace_many(self, changes):
        if any(new.dek_id == self._dek_id for _, new in changes) and not self.fired:
            self.fired = True
            self._overtake()
        return self._store.replace_many(changes)


def test_a_412_never_moves_a_dek_from_a_newer_version_back_to_the_page_target(world):
    """L2: a page for V2 starts (V2 current). During it, V3 appears and V3's re-wrap moves DEK X. The V2 page's replace
    of X gets 412, re-reads X on V3, and must leave it there: V2 is no longer the key's current version."""
    from shared.envelope.deks import rewrapped, unwrap_checked

    plaintexts = _seed(world, MYSQL, 1, partition="mysql-000")
    [(partition, dek_id)] = plaintexts
    v2 = _rotate(world, MYSQL)
    ref = world.key(MYSQL).ref

    def v3_rotation_and_its_rewrap() -> None:
        v3 = _rotate(world, MYSQL)
        read = world.dekstore.get(partition, dek_id)
        with unwrap_checked(read, vault=world.vault) as opened:
            world.dekstore.replace(rewrapped(opened, vault=world.vault, key=ref, version=v3.version))

    store = _OvertakenOnce(world.dekstore, dek_id, v3_rotation_and_its_rewrap)
    message = RewrapMessage(MYSQL, v2.key_id, partition).to_json()
    outcome = rewrap_page(message, **{**_worker_ports(world), "dekstore": store})
    assert store.fired and outcome.succeeded == 0 and outcome.skipped == 1
    v3 = world.vault.get_key(ref)
    _assert_all_open_on(world, plaintexts, v3.key_id)


def test_a_412_on_a_dek_still_older_than_the_current_target_moves_it(world):
    """The other side of L2: when the re-read DEK is still on an older version and the target is still current (the
    ETag changed for another reason), the page moves it."""
    plaintexts = _seed(world, MYSQL, 1, partition="mysql-000")
    [(partition, dek_id)] = plaintexts
    v2 = _rotate(world, MYSQL)

    def touched() -> None:  # rewritten in place (same version), so the ETag changes
        world.dekstore.replace(world.dekstore.get(partition, dek_id))

    store = _OvertakenOnce(world.dekstore, dek_id, touched)
    outcome = rewrap_page(
        RewrapMessage(MYSQL, v2.key_id, partition).to_json(), **{**_worker_ports(world), "dekstore": store}
    )
    assert store.fired and outcome.succeeded == 1
    _assert_all_open_on(world, plaintexts, v2.key_id)


def test_a_page_that_lists_a_dek_already_on_a_newer_version_leaves_it_there(world):
    """L2's twin at page start: the page checked V2 is current, then V3 appeared and its re-wrap moved X before this
    page listed it. X is on a newer version than the target: skipped, never written back under V2."""
    from shared.envelope.deks import rewrapped, unwrap_checked

    plaintexts = _seed(world, MYSQL, 1, partition="mysql-000")
    [(partition, dek_id)] = plaintexts
    v2 = _rotate(world, MYSQL)
    ref = world.key(MYSQL).ref

    class OvertakenBeforeListing:
        def __getattr__(self, name):
            return getattr(world.dekstore, name)

        def list_page(self, *args, **kwargs):
            v3 = _rotate(world, MYSQL)
            read = world.dekstore.get(partition, dek_id)
            with unwrap_checked(read, vault=world.vault) as opened:
                world.dekstore.replace(rewrapped(opened, vault=world.vault, key=ref, version=v3.version))
            return world.dekstore.list_page(*args, **kwargs)

    message = RewrapMessage(MYSQL, v2.key_id, partition).to_json()
    outcome = rewrap_page(message, **{**_worker_ports(world), "dekstore": OvertakenBeforeListing()})
    assert outcome.succeeded == 0 and outcome.skipped == 1
    _assert_all_open_on(world, plaintexts, world.vault.get_key(ref).key_id)


def test_a_consumer_url_spelled_otherwise_by_arm_still_blocks_retirement_and_counts_as_moved(world):
    """M6, the consumer side: ARM reports the MySQL server's key in the private-link and :443 form while the vault's
    ids use the vault's own host. The version it uses is still in use; once on the current version, it is not behind."""
    from functions.rewrap.fan_out import on_new_version
    from shared.events import KeyNewVersionCreated

    _with_retirement(world)
    managed = world.key(MYSQL)
    old = world.vault.get_key(managed.ref)
    new = _rotate(world, MYSQL)
    server = managed.consumers[0].resource_id
    alias = old.key_id.replace(".vault.azure.net", ".privatelink.vaultcore.azure.net:443").upper()
    world.consumers.add("mysql-flexible-server", server, alias.replace("HTTPS", "https"))
    world.clock.advance(timedelta(days=31))
    retire = {
        "vault": world.vault, "dekstore": world.dekstore, "consumers": world.consumers, "audit": world.audit,
        "alerts": world.alerts, "clock": world.clock,
    }  # fmt: skip
    [decision] = retire_unused_versions(managed, enforce=True, **retire)
    assert "a consumer uses it" in decision.blockers
    assert world.vault.get_key(managed.ref, old.version).enabled
    spelled_new = new.key_id.replace("https://", "HTTPS://").replace(".net/", ".net:443/")
    world.consumers.add("mysql-flexible-server", server, spelled_new)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    assert world.consumers.get_state("mysql-flexible-server", server).key_url == spelled_new  # not moved again
