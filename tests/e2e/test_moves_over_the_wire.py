"""A consumer's key change over the wire, as long as Azure makes it (review H6): the MySQL server's PATCH is a
long-running operation that outlasts Event Grid's 30 s, yet the KeyNewVersionCreated delivery is answered at once,
the move is followed from the `cmk-move` queue, the server ends on the new version, and exactly one PATCH was sent.

Needs the emulator's timed long-running operations (`/admin/arm/operations`); skipped on an emulator without them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire, audit_records, fresh_system, wait_until

pytestmark = pytest.mark.e2e

MYSQL = "mysql-encryption-key"
LRO_SECONDS = 45  # longer than Event Grid waits for an answer


@pytest.fixture
def system(tmp_path) -> Iterator[LocalSystem]:
    local = fresh_system(tmp_path)
    with local:
        try:
            local.cloud.admin("PUT", "/arm/operations", {"duration_seconds": LRO_SECONDS})
        except RuntimeError as exc:
            pytest.skip(f"the emulator has no timed long-running operations ({exc})")
        yield local


@pytest.fixture
def wire(system: LocalSystem) -> Wire:
    return Wire(system)


def _server_id(system: LocalSystem) -> str:
    return next(c.resource_id for c in system.cloud.inventory().key(MYSQL).consumers if c.resource_id)


def _current_key_id(system: LocalSystem) -> str:
    vault = system.cloud.keyvault(system.cloud.identities.app)
    try:
        return vault.get_key(system.cloud.inventory().key(MYSQL).ref).key_id
    finally:
        vault.close()


def _patches(system: LocalSystem, resource_id: str) -> dict:
    counts = system.cloud.admin("GET", "/arm/operations")["patches"]
    return next((v for k, v in counts.items() if k.lower() == resource_id.lower()), {"accepted": 0, "refused": 0})


def _operations_of(system: LocalSystem, resource_id: str) -> list[dict]:
    operations = system.cloud.admin("GET", "/arm/operations")["operations"]
    return [o for o in operations if str(o.get("resource_id", "")).lower() == resource_id.lower()]


def test_a_new_version_is_answered_at_once_while_the_servers_patch_runs_longer_and_it_is_sent_once(system, wire):
    server = _server_id(system)
    before = _patches(system, server)  # the deployment's own PUT counts as a write
    mark = wire.mark()
    answer = wire.post("/api/rotations", json={"key": MYSQL, "reason": "e2e: a key change that takes minutes"})
    assert answer.status_code == 201, answer.text
    new_id = _current_key_id(system)
    line = wire.wait_for_log(lambda t: "keyvault_events: handled" in t and "KeyNewVersionCreated" in t, after=mark)
    assert '"enqueued"' in line  # decided and enqueued: the handler did not wait on ARM
    started = wire.wait_for_log(lambda t: "consumer_moves:" in t and '"started"' in t, after=mark, timeout=60)
    assert server.lower() in started.lower()
    [operation] = _operations_of(system, server)
    assert operation["status"] == "InProgress"  # the delivery was answered while the PATCH runs on

    # Event Grid delivers the same event again while the PATCH runs (at-least-once): answered at once, well inside
    # Event Grid's 30 s, and it converges on the move already in flight (no second PATCH, no 409).
    delivered = time.monotonic()
    assert _redeliver(system, _new_version_event(system, new_id)) in (200, 202)
    assert time.monotonic() - delivered < 30

    # The operation takes its real time (no clock move): the server ends on the new version after it.
    wait_until(
        lambda: system.cloud.get_resource(server)["properties"]["dataEncryption"]["primaryKeyURI"] == new_id,
        timeout=LRO_SECONDS + 60,
        what="the server on the new version",
    )
    assert time.monotonic() - delivered > 30 - 5  # it did outlast Event Grid's wait (the delivery did not)
    status = next(k for k in wire.keys()["keys"] if k["name"] == MYSQL)["dependents"]
    [consumer] = status["consumers"]
    assert (consumer["version"], consumer["available"]) == (new_id.rsplit("/", 1)[1], True)
    after = _patches(system, server)
    assert (after["accepted"] - before["accepted"], after["refused"] - before["refused"]) == (1, 0)  # one PATCH

    def moves() -> list[str]:
        return sorted(r["outcome"] for r in audit_records(wire, MYSQL) if r["action"] == "move-consumer")

    wait_until(lambda: "moved" in moves(), timeout=30, what="the follow-up that saw the operation succeed")
    assert moves() == ["moved"]  # one move, one record
    stats = system.cloud.admin("GET", "/eventgrid/stats")
    assert stats["timeouts"] == 0 and stats["redeliveries_after_timeout"] == 0, stats
    deliveries = system.cloud.admin("GET", "/eventgrid/deliveries")["value"]
    assert deliveries and all(200 <= (d["statusCode"] or 0) < 300 for d in deliveries), deliveries


def _new_version_event(system: LocalSystem, key_id: str) -> dict:
    events = system.cloud.admin("GET", "/eventgrid/events?eventType=Microsoft.KeyVault.KeyNewVersionCreated")["value"]
    [event] = [e for e in events if e.get("origin") == "system" and (e.get("data") or {}).get("Id") == key_id]
    return event


def _redeliver(system: LocalSystem, event: dict) -> int:
    """The event again, to the devhost's webhook, as Event Grid delivers it (same id, Event Grid schema)."""
    url = (
        f"{system.devhost['url']}/runtime/webhooks/eventgrid?functionName=keyvault_events"
        f"&code={system.devhost['eventgrid_key']}"
    )
    body = {k: v for k, v in event.items() if k not in ("origin", "cloudEvent")}
    headers = {"aeg-event-type": "Notification", "aeg-delivery-count": "1", "Content-Type": "application/json"}
    return requests.post(url, data=json.dumps([body]), headers=headers, timeout=60).status_code
