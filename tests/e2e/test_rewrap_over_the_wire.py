"""Never a lockout, over the wire: after a rotation, every DEK of the registry and the emulated MySQL server move to
the new version while the server stays available throughout (it unwraps its own DEK as its identity on every change
and clock move); the old version is retired only once nothing depends on it, and the guard refuses before that."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire, fresh_system, topic_events, wait_until

pytestmark = pytest.mark.e2e

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"
DEKS = 60


@pytest.fixture
def system(tmp_path) -> Iterator[LocalSystem]:
    local = fresh_system(tmp_path)
    with local:
        # The app still follows a key change's poller inside its Event Grid handler, so a MySQL/DES key change is
        # kept short here (2 s) rather than Azure's minutes (the emulators' default, over Event Grid's 30 s).
        local.cloud.admin("PUT", "/arm/operations", {"duration_seconds": 2})
        yield local


@pytest.fixture
def wire(system: LocalSystem) -> Wire:
    return Wire(system)


class Registry:
    """The app's DEK registry in the run's Azurite, seeded by this test, which keeps every plaintext to check."""

    def __init__(self, system: LocalSystem) -> None:
        from shared.azure.dekstore import TableDekStore
        from shared.azure.tables import LazyTable, table_client

        table = system.app_settings().get("CMK_DEK_TABLE") or "cmkdeks"
        self.store = TableDekStore(LazyTable(table_client(table, connection_string=system.storage_connection)))
        self.vault = system.cloud.keyvault(system.cloud.identities.app)
        self.inventory = system.cloud.inventory()
        self.kept: dict[tuple[str, str], bytes] = {}

    def seed(self, name: str, count: int) -> None:
        from shared.envelope.deks import key_check_value
        from shared.envelope.sharding import shard_of
        from shared.model import WrappedDek

        managed = self.inventory.key(name)
        consumer = next(c for c in managed.consumers if c.kind.value == "dek-table")
        current = self.vault.get_key(managed.ref)
        for i in range(count):
            dek, dek_id = os.urandom(32), f"{name}-dek-{i:04d}"
            partition = shard_of(dek_id, consumer.options["partition_prefix"], consumer.options["shards"])
            wrapped = self.vault.wrap_key(managed.ref, current.version, dek)
            self.store.add(
                WrappedDek(partition, dek_id, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, key_check_value(dek))
            )
            self.kept[(partition, dek_id)] = dek

    def on_version(self, name: str, key_id: str) -> bool:
        return all(self.store.get(p, d).key_id == key_id for (p, d) in self.kept if d.startswith(name))

    def all_open(self) -> bool:
        for (partition, dek_id), original in self.kept.items():
            entity = self.store.get(partition, dek_id)
            if self.vault.unwrap_key(entity.key_id, entity.wrapped, entity.algorithm) != original:
                return False
        return True


def _consumer_history(system: LocalSystem) -> dict:
    return system.cloud.admin("GET", "/consumers")["consumers"]


def _mysql_server(system: LocalSystem) -> str:
    return next(c.resource_id for c in system.cloud.inventory().key(MYSQL).consumers if c.resource_id)


def test_a_rotation_moves_every_dek_and_the_server_which_stays_available_then_the_old_version_retires(system, wire):
    registry = Registry(system)
    registry.seed(MYSQL, DEKS)
    old = registry.vault.get_key(registry.inventory.key(MYSQL).ref)
    system.cloud.admin("DELETE", "/consumers")  # count availability from here on
    answer = wire.post("/api/rotations", json={"key": MYSQL, "reason": "e2e: re-wrap and move the consumers"})
    assert answer.status_code == 201, answer.text
    new_id = registry.vault.get_key(registry.inventory.key(MYSQL).ref).key_id

    wait_until(lambda: topic_events(system, "CmkGuardian.Rewrap.Completed", MYSQL), what="the re-wrap completed alert")
    assert registry.on_version(MYSQL, new_id) and registry.all_open()
    # The server's move is a long-running operation followed from the cmk-move queue: it ends when ARM says so.
    wait_until(
        lambda: (
            system.cloud.get_resource(_mysql_server(system))["properties"]["dataEncryption"]["primaryKeyURI"] == new_id
        ),
        timeout=120,
        what="the server on the new version",
    )
    status = next(k for k in wire.keys()["keys"] if k["name"] == MYSQL)["dependents"]
    new_version = new_id.rsplit("/", 1)[1]
    assert status["deks_by_version"] == {new_version: DEKS}
    assert status["rewrap"]["remaining"] == 0 and status["rewrap"]["succeeded"] == DEKS
    [consumer] = status["consumers"]
    assert (consumer["version"], consumer["available"]) == (new_version, True)

    # 31 days on, nothing depends on the old version: the sweep retires it; the server never lost its key.
    system.cloud.admin("POST", "/clock", {"advance_iso": "P31D"})
    mark = wire.mark()
    assert wire.run_function("compliance_sweep").status_code == 202
    wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=60)
    assert not registry.vault.get_key(registry.inventory.key(MYSQL).ref, old.version).enabled
    history = _consumer_history(system)
    server_history = next(h for rid, h in history.items() if rid.lower() == _mysql_server(system).lower())
    assert server_history["unavailable_checks"] == 0 and server_history["available_checks"] > 0
    assert registry.all_open()


def test_the_guard_refuses_to_retire_a_version_that_a_dek_still_needs(system, wire):
    """One DEK cannot be moved (its KCV no longer matches: the worker refuses it and leaves it untouched), so the old
    version keeps a dependent however often the sweep runs, and the guard keeps it enabled."""
    import dataclasses

    registry = Registry(system)
    registry.seed(MYSQL, DEKS)
    managed = registry.inventory.key(MYSQL)
    old = registry.vault.get_key(managed.ref)
    stuck_key = next(k for k in registry.kept if k[1].endswith("-0007"))
    stuck = registry.store.get(*stuck_key)
    registry.store.replace(dataclasses.replace(stuck, kcv="0" * len(stuck.kcv)))
    for subscription in system.cloud.admin("GET", "/eventgrid/subscriptions")["value"]:
        system.cloud.admin("DELETE", f"/eventgrid/subscriptions/{subscription['name']}")  # nobody hears the rotation
    new_id = registry.vault.rotate_key(managed.ref).key_id
    system.cloud.admin("POST", "/clock", {"advance_iso": "P31D"})

    def sweep() -> None:
        mark = wire.mark()
        assert wire.run_function("compliance_sweep").status_code == 202
        wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=60)

    sweep()  # resumes the re-wrap the lost event should have started
    others = [k for k in registry.kept if k != stuck_key]
    wait_until(lambda: all(registry.store.get(*k).key_id == new_id for k in others), what="the resumed re-wrap")
    sweep()  # everything else has moved: only the stuck DEK still depends on the old version
    assert registry.vault.get_key(managed.ref, old.version).enabled
    records = wire.get(f"/api/audit?key={MYSQL}").json()["records"]
    assert not [r for r in records if r["action"] == "retire-version" and r["outcome"] == "retired"]
    assert registry.store.get(*stuck_key).key_id == old.key_id
    assert wait_until(lambda: topic_events(system, "CmkGuardian.Rewrap.KcvMismatch", MYSQL), what="the KCV alert")


def test_a_dek_that_cannot_move_is_quarantined_alerted_once_and_costs_the_hourly_sweeps_nothing(system, wire):
    """M5 over the wire: one DEK's KCV is wrong, so no re-wrap can move it. It is alerted once and quarantined; three
    hourly sweeps then send no re-wrap page at all (no shard has a DEK behind that could move), alert nothing more,
    and GET /api/keys shows it; an operator's release lets the next sweep try (only) its shard again."""
    import dataclasses

    registry = Registry(system)
    registry.seed(MYSQL, 40)
    stuck = sorted(registry.kept)[5]
    read = registry.store.get(*stuck)
    registry.store.replace(dataclasses.replace(read, kcv="0" * 16))
    answer = wire.post("/api/rotations", json={"key": MYSQL, "reason": "e2e: a DEK that cannot move"})
    assert answer.status_code == 201, answer.text
    kcv = "CmkGuardian.Rewrap.KcvMismatch"
    wait_until(lambda: topic_events(system, kcv, MYSQL), timeout=120, what="the KCV alert")
    new_id = registry.vault.get_key(registry.inventory.key(MYSQL).ref).key_id
    moved = [k for k in registry.kept if k != stuck]
    wait_until(lambda: all(registry.store.get(*k).key_id == new_id for k in moved), timeout=120, what="the others")

    def pages_since(mark: int) -> list[str]:  # the re-wrap pages the devhost ran after `mark`, as its log says
        return [line for line in system.devhost_child().lines[mark:] if "Executed 'Functions.rewrap_worker'" in line]

    time.sleep(5)  # the last pages of the rotation's own re-wrap are done
    start = wire.mark()
    for _ in range(3):
        system.cloud.admin("POST", "/clock", {"advance_iso": "PT1H"})
        mark = wire.mark()
        assert wire.run_function("compliance_sweep").status_code == 202
        wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=120)
    time.sleep(5)  # what a sweep would have queued has been picked up by now (queues poll every second)
    assert pages_since(start) == []  # no shard listed: the only DEK behind is quarantined
    assert len(topic_events(system, kcv, MYSQL)) == 1
    status = next(k for k in wire.keys()["keys"] if k["name"] == MYSQL)["dependents"]
    assert status["quarantined"]["count"] == 1 and status["quarantined"]["deks"][0]["dek_id"] == stuck[1]

    body = {"key": MYSQL, "partition": stuck[0], "dek_id": stuck[1], "reason": "e2e: try it again"}
    released = wire.post("/api/quarantine/release", json=body)
    assert released.status_code == 200, released.text
    system.cloud.admin("POST", "/clock", {"advance_iso": "PT1H"})
    mark = wire.mark()
    assert wire.run_function("compliance_sweep").status_code == 202
    wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=120)
    wait_until(lambda: pages_since(mark), timeout=60, what="the released DEK's shard page")
    time.sleep(3)
    assert len(pages_since(mark)) == 1  # its shard alone
    wait_until(lambda: len(topic_events(system, kcv, MYSQL)) == 2, timeout=60, what="the second KCV alert")
