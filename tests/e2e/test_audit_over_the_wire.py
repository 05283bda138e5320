"""The audit trail and the log as an operator reads them, over the wire (issue 19): one operator rotation of a key
with no DEK writes at most three audit records (the rotation, the re-wrap with nothing to move, the consumer's move),
no re-wrap page runs or logs, and the app's own disk encryption set write, echoed back by the resource group topic,
is logged as its own change rather than rejected."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire, audit_records, fresh_system, wait_until

pytestmark = pytest.mark.e2e

AKS = "aks-encryption-key"  # the local run seeds no DEK: its registry shards are empty


@pytest.fixture
def system(tmp_path) -> Iterator[LocalSystem]:
    local = fresh_system(tmp_path)
    with local:
        local.cloud.admin("PUT", "/arm/operations", {"duration_seconds": 2})  # a DES key change of 2 s, not minutes
        yield local


@pytest.fixture
def wire(system: LocalSystem) -> Wire:
    return Wire(system)


def _settled(wire: Wire, key: str, quiet_seconds: float = 4.0) -> list[dict]:
    """The key's records once nothing new has been added for `quiet_seconds` (the moves and checks are queued)."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < quiet_seconds:
        records = audit_records(wire, key)
        ids = [r["id"] for r in records]
        if ids != last:
            last, since = ids, time.monotonic()
        time.sleep(0.5)
    return audit_records(wire, key)


def test_one_rotation_of_a_key_with_no_deks_writes_at_most_three_audit_records(system: LocalSystem, wire: Wire):
    before = {r["id"] for r in _settled(wire, AKS, quiet_seconds=2.0)}
    mark = wire.mark()
    response = wire.post("/api/rotations", json={"key": AKS, "reason": "issue 19: count the records"})
    assert response.status_code == 201, response.text
    new_version = response.json()["new_version"]

    def moved() -> bool:
        return any(r["action"] == "move-consumer" and r["outcome"] == "moved" for r in audit_records(wire, AKS))

    wait_until(moved, timeout=90, what="the disk encryption set's move to the new version")
    records = [r for r in _settled(wire, AKS) if r["id"] not in before]
    summary = sorted((r["action"], r["outcome"]) for r in records)
    assert len(records) <= 3, summary
    assert summary == [("move-consumer", "moved"), ("rewrap", "completed"), ("rotate", "rotated")], summary
    assert all(r["to_version"] == new_version for r in records), records
    assert next(r for r in records if r["action"] == "rewrap")["detail"]["deks"] == 0

    log = system.devhost_child().lines[mark:]
    assert not [line for line in log if "rewrap_worker" in line], "a re-wrap page ran (or logged) with nothing to do"
    # The DES write the app made is delivered to role_assignment_events by the resource group topic: its own change.
    wire.wait_for_log(
        lambda t: "role_assignment_events: ignored own_change" in t and "diskEncryptionSets/write" in t, after=mark
    )
    rejected = [line for line in system.devhost_child().lines[mark:] if "rejected" in line and "diskEncryption" in line]
    assert rejected == []


REWRAP_DEKS = 2000
MYSQL = "mysql-encryption-key"


def test_a_2000_dek_re_wrap_is_two_audit_records_and_never_overflows_the_connection_pool(system, wire):
    """The newcomer's trial saw 32 "Connection pool is full" warnings in a 2,000-DEK re-wrap and 160 page records in
    the trail: the pool is now as large as the re-wrap's concurrency, and the re-wrap is a started and a completed
    record, its pages only log lines (one per page that moved something)."""
    from tests.e2e.test_rewrap_over_the_wire import Registry

    registry = Registry(system)
    registry.seed(MYSQL, REWRAP_DEKS)
    before = {r["id"] for r in _settled(wire, MYSQL, quiet_seconds=1.0)}
    mark = wire.mark()
    response = wire.post("/api/rotations", json={"key": MYSQL, "reason": "issue 19: a re-wrap worth reading"})
    assert response.status_code == 201, response.text

    def completed() -> list[dict]:
        return [r for r in audit_records(wire, MYSQL) if r["action"] == "rewrap" and r["outcome"] == "completed"]

    [done] = wait_until(completed, timeout=240, what="the re-wrap's completed record")
    assert done["detail"]["deks"] == REWRAP_DEKS
    rewraps = sorted(r["outcome"] for r in _settled(wire, MYSQL) if r["id"] not in before and r["action"] == "rewrap")
    assert rewraps == ["completed", "started"]
    log = system.devhost_child().lines[mark:]
    full = [line for line in log if "Connection pool is full" in line]
    assert full == [], f"{len(full)} pool warnings: {full[:2]}"
    pages = [line for line in log if "rewrap_worker: {" in line]
    quiet = ('"processed": 0,', '"completed": true', '"superseded": true')
    assert pages and all(quiet[0] not in line or quiet[1] in line or quiet[2] in line for line in pages), pages[:3]


def test_locally_the_console_exporter_shows_each_event_once(tmp_path):
    """CMK_TELEMETRY_CONSOLE=true: the local host prints each custom event as the OpenTelemetry log record Azure
    Monitor would turn into a customEvents row, once (the exporter is installed once per process)."""
    local = fresh_system(tmp_path, CMK_TELEMETRY_CONSOLE="true")
    with local:
        local.cloud.admin("PUT", "/arm/operations", {"duration_seconds": 2})
        wire = Wire(local)
        mark = wire.mark()
        response = wire.post("/api/rotations", json={"key": AKS, "reason": "issue 19: see the events"})
        assert response.status_code == 201, response.text
        new_version = response.json()["new_version"]
        marker = '"microsoft.custom_event.name": "CmkGuardian.KeyRotated"'
        wire.wait_for_log(lambda t: marker in t, after=mark)
        wire.wait_for_log(lambda t: '"microsoft.custom_event.name": "CmkGuardian.ConsumerMoved"' in t, after=mark)
        time.sleep(2)  # anything printed twice would be printed by now
        log = local.devhost_child().lines[mark:]
        assert len([line for line in log if marker in line]) == 1
        assert any(f'"version": "{new_version}"' in line for line in log)
