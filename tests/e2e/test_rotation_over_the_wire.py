"""Rotation through the whole local system: the emulated Key Vault raises its events on emulated time, Event Grid
delivers them to the devhost, the app rotates through the unchanged SDKs and records it in Azurite, and its alerts
reach the Event Grid topic. Each test gets a fresh system (they move the clock)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire, audit_records, fresh_system, topic_events, wait_until

pytestmark = pytest.mark.e2e

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"


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


def _vault(system: LocalSystem):
    return system.cloud.keyvault(system.cloud.identities.app)


def _versions(system: LocalSystem, name: str) -> list:
    vault = _vault(system)
    try:
        return vault.list_versions(system.cloud.inventory().key(name).ref)
    finally:
        vault.close()


def _current(system: LocalSystem, name: str):
    vault = _vault(system)
    try:
        return vault.get_key(system.cloud.inventory().key(name).ref)
    finally:
        vault.close()


def _notify_only_policy(system: LocalSystem, name: str) -> None:
    """Take the vault's own Rotate action away, so the app is the one that must rotate."""
    from shared.model import LifetimeAction, RotationActionType, RotationPolicy

    vault = _vault(system)
    try:
        vault.set_rotation_policy(
            system.cloud.inventory().key(name).ref,
            RotationPolicy("P180D", (LifetimeAction(RotationActionType.NOTIFY, None, "P30D"),)),
        )
    finally:
        vault.close()


def test_near_expiry_event_rotates_once_with_one_alert_and_one_audit_record(system, wire):
    _notify_only_policy(system, AKS)
    old = _current(system, AKS).version
    mark = wire.mark()
    system.cloud.admin("POST", "/clock", {"advance_iso": "P151D"})
    line = wire.wait_for_log(
        lambda t: "keyvault_events: handled" in t and "KeyNearExpiry" in t and '"status": "rotated"' in t, after=mark
    )
    assert AKS in line and old in line
    rotated = wait_until(lambda: topic_events(system, "CmkGuardian.Key.Rotated", AKS), what="the Rotated CloudEvent")
    assert len(rotated) == 1 and rotated[0]["data"]["old_version"] == old
    versions = _versions(system, AKS)
    assert len(versions) == 2 and _current(system, AKS).version == rotated[0]["data"]["new_version"]
    records = [r for r in audit_records(wire, AKS) if r["outcome"] == "rotated"]
    assert len(records) == 1 and records[0]["trigger"].startswith("event:")
    assert records[0]["id"] == rotated[0]["data"]["audit_id"]


def test_the_sweep_rotates_a_key_past_rotate_after_and_gives_it_the_inventorys_policy(system, wire):
    _notify_only_policy(system, AKS)
    old = _current(system, AKS).version
    system.cloud.admin("POST", "/clock", {"advance_iso": "P91D"})  # past rotate_after, before the notify window
    mark = wire.mark()
    assert wire.run_function("compliance_sweep").status_code == 202
    wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=60)
    current = _current(system, AKS)
    assert current.version != old and len(_versions(system, AKS)) == 2
    keys = {k["name"]: k for k in wire.keys()["keys"]}
    actions = {a["action"] for a in keys[AKS]["rotation_policy"]["lifetime_actions"]}
    assert "Rotate" in actions  # the inventory's policy is back
    outcomes = {(r["action"], r["outcome"]) for r in audit_records(wire, AKS)}
    assert {("rotate", "rotated"), ("set-rotation-policy", "policy-set")} <= outcomes


def test_an_expired_current_version_is_rotated_at_once_with_a_critical_alert(system, wire):
    # Nobody heard the events (no subscription): the sweep, the source of truth, still finds the expired key.
    for subscription in system.cloud.admin("GET", "/eventgrid/subscriptions")["value"]:
        system.cloud.admin("DELETE", f"/eventgrid/subscriptions/{subscription['name']}")
    _notify_only_policy(system, AKS)
    old = _current(system, AKS).version
    system.cloud.admin("POST", "/clock", {"advance_iso": "P181D"})
    mark = wire.mark()
    assert wire.run_function("compliance_sweep").status_code == 202
    wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=60)
    expired = wait_until(lambda: topic_events(system, "CmkGuardian.Key.Expired", AKS), what="the Expired CloudEvent")
    assert expired[0]["data"]["old_version"] == old
    assert (expired[0].get("data") or {}).get("key") == AKS
    assert _current(system, AKS).version == expired[0]["data"]["new_version"]
    assert len(_versions(system, AKS)) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_instances_sweeping_at_once_make_one_version(system, wire):
    second = system.start_devhost("devhost-2", _free_port())
    _notify_only_policy(system, AKS)
    system.cloud.admin("POST", "/clock", {"advance_iso": "P91D"})
    barrier = threading.Barrier(2)
    answers = []

    def sweep(url: str) -> None:
        barrier.wait()
        answers.append(
            requests.post(
                f"{url}/admin/functions/compliance_sweep",
                json={"input": ""},
                headers={"x-functions-key": system.devhost["master_key"]},
                timeout=30,
            ).status_code
        )

    marks = (wire.mark(), len(system.devhost_child("devhost-2").lines))
    threads = [threading.Thread(target=sweep, args=(u,)) for u in (system.devhost["url"], second["url"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [202, 202]
    done = "Executed 'Functions.compliance_sweep' (Succeeded"
    wire.wait_for_log(lambda t: done in t, after=marks[0], timeout=60)
    system.devhost_child("devhost-2").wait_for(lambda t: done in t, 60, start=marks[1])
    assert len(_versions(system, AKS)) == 2
    rotated = [r for r in audit_records(wire, AKS) if r["outcome"] == "rotated"]
    assert len(rotated) == 1
