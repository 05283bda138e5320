"""Azure's timing in the local cloud: a consumer's key change is a long-running operation that takes longer than Event
Grid's 30 s (202, `InProgress`, then `Succeeded`, or `Failed` when the identity cannot use the new version), a second
write meanwhile is refused, a disk encryption set's disks move after it and only then does `previousKeys` empty, and a
webhook slower than the delivery timeout gets its event again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from azure.core.rest import HttpRequest

from emulators.config import ConfigError, parse_config
from emulators.core import MovableClock
from emulators.eventgrid import EventGrid
from tests.emulators.test_eventgrid import TOPIC_ID, VAULT_ID, LoopThread, Receiver, wait_for
from tests.support.consumers import DES_API, MYSQL_API, ConsumerWorld
from tests.support.emulators import Emulators, start_emulators

ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"


@pytest.fixture
def world(emu: Emulators) -> Iterator[ConsumerWorld]:
    built = ConsumerWorld(emu)
    yield built
    built.close()


def patch(world: ConsumerWorld, resource_id: str, api: str, body: dict[str, Any]) -> Any:
    """The raw response (headers included) of a PATCH."""
    return world.arm.send_request(
        HttpRequest("PATCH", f"{world.emu.arm_url}{resource_id}?api-version={api}", json=body)
    )


def get_url(world: ConsumerWorld, url: str) -> Any:
    return world.arm.send_request(HttpRequest("GET", url))


def operations(world: ConsumerWorld) -> dict[str, Any]:
    return world.emu.admin("GET", "arm/operations", expect=200)[1]


def new_key_for(world: ConsumerWorld, principal: str) -> str:
    """A second key the consumer's identity may use (Crypto Service Encryption User on it)."""
    name, key_id = world.new_key()
    world.grant(principal, ENCRYPTION_USER, world.emu.key_scope(name))
    return key_id


def test_a_key_change_is_in_progress_for_the_configured_time_then_succeeds(world: ConsumerWorld) -> None:
    assert operations(world)["duration_seconds"] == 40.0  # the default: longer than Event Grid's 30 s
    name, v1 = world.new_key()
    server = world.mysql(v1)
    v2 = world.new_version(name)

    response = patch(world, server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"primaryKeyURI": v2}}})
    assert response.status_code == 202
    status_url = response.headers["Azure-AsyncOperation"]
    assert "/azureAsyncOperation/" in status_url and "/operationResults/" in response.headers["Location"]
    assert 1 <= int(response.headers["Retry-After"]) <= 10

    status = get_url(world, status_url)
    assert status.json()["status"] == "InProgress" and int(status.headers["Retry-After"]) >= 1
    assert get_url(world, response.headers["Location"]).status_code == 202
    # Meanwhile the server shows its old key, and that it is updating (the key change is visible once it succeeded).
    props = world.properties(server.resource_id, MYSQL_API)
    assert props["dataEncryption"]["primaryKeyURI"] == v1
    assert props["state"] == "Updating" and props["provisioningState"] == "Updating"

    world.emu.advance_clock(35)
    assert get_url(world, status_url).json()["status"] == "InProgress"
    world.emu.advance_clock(6)
    done = get_url(world, status_url).json()
    assert (
        done["status"] == "Succeeded" and "endTime" in done and "Retry-After" not in get_url(world, status_url).headers
    )
    props = world.properties(server.resource_id, MYSQL_API)
    assert props["dataEncryption"]["primaryKeyURI"] == v2
    assert props["state"] == "Ready" and props["provisioningState"] == "Succeeded"
    assert world.history(server.resource_id)["unavailable_checks"] == 0

    listed = operations(world)
    mine = [op for op in listed["operations"] if op["resource_id"].lower() == server.resource_id.lower()]
    assert [(op["method"], op["status"]) for op in mine] == [("PATCH", "Succeeded")]
    assert mine[0]["started"] < mine[0]["ended"]
    assert listed["patches"][server.resource_id] == {  # the creating PUT, then the PATCH
        "accepted": 2,
        "refused": 0,
        "by_method": {"PUT": {"accepted": 1, "refused": 0}, "PATCH": {"accepted": 1, "refused": 0}},
    }


def test_an_operation_completes_on_time_without_anyone_polling(world: ConsumerWorld) -> None:
    world.emu.admin("PUT", "arm/operations", {"duration_seconds": 1}, expect=200)
    name, v1 = world.new_key()
    server = world.mysql(v1)
    v2 = world.new_version(name)
    before = len(
        world.emu.admin("GET", "eventgrid/events?eventType=Microsoft.Resources.ResourceWriteSuccess")[1]["value"]
    )

    assert (
        patch(
            world, server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"primaryKeyURI": v2}}}
        ).status_code
        == 202
    )

    def written() -> bool:  # the write event is raised when the operation completes, by the lifecycle tick
        path = "eventgrid/events?eventType=Microsoft.Resources.ResourceWriteSuccess"
        return len(world.emu.admin("GET", path)[1]["value"]) > before

    wait_for(written, timeout=10)
    assert world.properties(server.resource_id, MYSQL_API)["dataEncryption"]["primaryKeyURI"] == v2


def test_a_second_write_while_one_is_in_flight_is_refused_with_409(world: ConsumerWorld) -> None:
    name, v1 = world.new_key()
    server = world.mysql(v1)
    v2, v3 = world.new_version(name), world.new_version(name)
    change = {"properties": {"dataEncryption": {"primaryKeyURI": v2}}}
    assert patch(world, server.resource_id, MYSQL_API, change).status_code == 202

    again = patch(world, server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"primaryKeyURI": v3}}})
    assert again.status_code == 409 and again.json()["error"]["code"] == "AnotherOperationInProgress"
    assert patch(world, server.resource_id, MYSQL_API, change).status_code == 409  # even the same change
    counts = operations(world)["patches"][server.resource_id]
    assert (counts["accepted"], counts["refused"]) == (2, 2)
    assert counts["by_method"]["PATCH"] == {"accepted": 1, "refused": 2}
    invalid = patch(world, server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"type": "Nope"}}})
    assert invalid.status_code == 409  # in flight: refused before it is even read

    world.emu.advance_clock(41)
    assert world.properties(server.resource_id, MYSQL_API)["dataEncryption"]["primaryKeyURI"] == v2
    invalid = patch(world, server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"type": "Nope"}}})
    assert invalid.status_code == 400 and "dataEncryption.type" in invalid.json()["error"]["message"]
    counts = operations(world)["patches"][server.resource_id]
    assert (counts["accepted"], counts["refused"]) == (2, 4)
    final = patch(world, server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"primaryKeyURI": v3}}})
    assert final.status_code == 202


def test_a_key_change_the_identity_cannot_use_fails_and_the_server_keeps_its_key(world: ConsumerWorld) -> None:
    _, v1 = world.new_key()
    server = world.mysql(v1)
    _, elsewhere = world.new_key()  # the server's identity holds no role on this key

    response = patch(
        world, server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"primaryKeyURI": elsewhere}}}
    )
    assert response.status_code == 202
    world.emu.advance_clock(41)
    status = get_url(world, response.headers["Azure-AsyncOperation"]).json()
    assert status["status"] == "Failed"
    assert status["error"]["code"] == "KeyVaultAccessFailed" and "ForbiddenByRbac" in status["error"]["message"]
    result = get_url(world, response.headers["Location"])
    assert result.status_code == 400 and result.json()["error"]["code"] == "KeyVaultAccessFailed"

    props = world.properties(server.resource_id, MYSQL_API)
    assert props["dataEncryption"]["primaryKeyURI"] == v1 and props["state"] == "Ready"
    assert world.history(server.resource_id)["unavailable_checks"] == 0


def test_the_sdk_poller_follows_an_operation_to_its_end(world: ConsumerWorld) -> None:
    from azure.mgmt.resource.resources.models import GenericResource

    world.emu.admin("PUT", "arm/operations", {"duration_seconds": 2}, expect=200)
    _, v1 = world.new_key()
    server = world.mysql(v1)
    v2 = new_key_for(world, server.principal_id)

    started = time.monotonic()
    poller = world.arm.resources.begin_update_by_id(
        server.resource_id,
        GenericResource(properties={"dataEncryption": {"primaryKeyURI": v2}}),
        api_version=MYSQL_API,
    )
    result = poller.result(timeout=30)
    assert time.monotonic() - started >= 1.5
    assert result.properties["dataEncryption"]["primaryKeyURI"] == v2 and result.properties["state"] == "Ready"


def test_the_duration_is_checked_when_set() -> None:
    with pytest.raises(ConfigError, match="lro_seconds"):
        parse_config({"lro_seconds": -1})
    with pytest.raises(ConfigError, match="eventgrid_timeout_seconds"):
        parse_config({"eventgrid_timeout_seconds": 0})
    config = parse_config({"lro_seconds": 2, "des_follow_seconds": 60, "des_disk_move_seconds": 30})
    assert (config.lro_seconds, config.des_follow_seconds, config.des_disk_move_seconds) == (2.0, 60.0, 30.0)
    assert parse_config({}).lro_seconds > 30


def test_the_admin_api_names_a_bad_duration(emu: Emulators) -> None:
    status, body = emu.admin("PUT", "arm/operations", {"duration_seconds": "soon"})
    assert status == 400 and "duration_seconds" in body["error"]["message"]


# ----------------------------------------------------------------------------------- disk encryption set's disks
def test_a_des_following_latest_moves_within_its_lag_and_its_disks_after_it(world: ConsumerWorld) -> None:
    name, v1 = world.new_key()
    des = world.des(v1, follow_latest=True)
    v2 = world.new_version(name)
    world.emu.advance_clock(29 * 60)
    assert world.properties(des.resource_id, DES_API)["activeKey"]["keyUrl"] == v1

    world.emu.advance_clock(2 * 60)  # the set's lag (30 min) has passed: it moves, its disks not yet
    props = world.properties(des.resource_id, DES_API)
    assert props["activeKey"]["keyUrl"] == v2 and [k["keyUrl"] for k in props["previousKeys"]] == [v1]
    world.emu.advance_clock(19 * 60)
    assert [k["keyUrl"] for k in world.properties(des.resource_id, DES_API)["previousKeys"]] == [v1]

    world.emu.advance_clock(2 * 60)  # the disks' lag (20 min) has passed: every disk is on v2
    assert world.properties(des.resource_id, DES_API)["previousKeys"] == []


def test_held_disks_keep_the_previous_key_until_released(world: ConsumerWorld) -> None:
    world.emu.admin("PUT", "arm/operations", {"duration_seconds": 0}, expect=200)
    name, v1 = world.new_key()
    des = world.des(v1)
    v2 = world.new_version(name)
    world.emu.admin("POST", "arm/disk-encryption-sets/hold", {"resource_id": des.resource_id, "held": True}, expect=200)
    assert patch(world, des.resource_id, DES_API, {"properties": {"activeKey": {"keyUrl": v2}}}).status_code == 202
    props = world.properties(des.resource_id, DES_API)
    assert props["activeKey"]["keyUrl"] == v2 and [k["keyUrl"] for k in props["previousKeys"]] == [v1]

    world.emu.advance_clock(iso="P2D")
    assert [k["keyUrl"] for k in world.properties(des.resource_id, DES_API)["previousKeys"]] == [v1]
    listed = world.emu.admin("GET", "arm/disk-encryption-sets", expect=200)[1]["value"]
    assert {"resource_id": des.resource_id, "held": True, "previous_keys": 1} == {
        k: v for k, v in next(s for s in listed if s["resource_id"] == des.resource_id).items() if k != "disks_move_at"
    }

    world.emu.admin(
        "POST", "arm/disk-encryption-sets/hold", {"resource_id": des.resource_id, "held": False}, expect=200
    )
    world.emu.advance_clock(1)
    assert world.properties(des.resource_id, DES_API)["previousKeys"] == []


def test_a_des_pointed_at_a_new_version_keeps_the_old_one_until_its_disks_moved(world: ConsumerWorld) -> None:
    world.emu.admin("PUT", "arm/operations", {"duration_seconds": 0}, expect=200)
    name, v1 = world.new_key()
    des = world.des(v1)
    v2 = world.new_version(name)
    assert patch(world, des.resource_id, DES_API, {"properties": {"activeKey": {"keyUrl": v2}}}).status_code == 202
    assert [k["keyUrl"] for k in world.properties(des.resource_id, DES_API)["previousKeys"]] == [v1]
    world.emu.advance_clock(21 * 60)
    assert world.properties(des.resource_id, DES_API)["previousKeys"] == []


def test_a_hold_names_a_bad_field(emu: Emulators) -> None:
    status, body = emu.admin("POST", "arm/disk-encryption-sets/hold", {"held": True})
    assert status == 400 and "resource_id" in body["error"]["message"]
    status, body = emu.admin("POST", "arm/disk-encryption-sets/hold", {"resource_id": "x", "held": "yes"})
    assert status == 400 and "held" in body["error"]["message"]


# -------------------------------------------------------------------------------------- Event Grid's 30 s timeout
class SlowReceiver(Receiver):
    """Records each notification as it arrives; answers the first only after `delay` seconds, the later ones at once
    (the handshake as Receiver does)."""

    delay: float = 0.0

    def app(self) -> web.Application:
        handshake = super().app().router.routes()._routes[0].handler  # type: ignore[attr-defined]

        async def hook(request: web.Request) -> web.StreamResponse:
            if request.headers.get("aeg-event-type") != "Notification":
                return await handshake(request)
            body = await request.text()
            self.requests.append(
                {"method": request.method, "headers": dict(request.headers), "body": body, "at": time.monotonic()}
            )
            if len(self.notifications()) == 1:
                await asyncio.sleep(self.delay)
            return web.Response(status=200)

        app = web.Application()
        app.router.add_route("*", "/hook", hook)
        return app


def test_a_delivery_not_answered_in_time_is_delivered_again_and_counted() -> None:
    loop = LoopThread()
    grid = EventGrid(clock=MovableClock(), topic_key="k", topic_id=TOPIC_ID, retry_scale=0.01, delivery_timeout=0.5)
    try:
        receiver = SlowReceiver()
        receiver.delay = 1.5
        receiver.port = loop.serve(receiver.app())
        loop.run(grid.start())
        grid.add_subscription({"name": "slow", "endpoint": receiver.url})
        grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyNewVersionCreated", subject="k", data={})

        wait_for(lambda: len(grid.deliveries()) == 2, timeout=15)
        first, second = grid.deliveries()
        assert first["timed_out"] is True and first["statusCode"] is None and "0.5 s" in first["error"]
        assert second["timed_out"] is False and second["statusCode"] == 200 and second["attempt"] == 2
        assert grid.stats() == {"deliveries": 2, "timeouts": 1, "redeliveries_after_timeout": 1}
        wait_for(lambda: len(receiver.notifications()) == 2, timeout=5)  # the slow handler did run twice
        assert [n["headers"]["aeg-delivery-count"] for n in receiver.notifications()] == ["0", "1"]
    finally:
        loop.run(grid.stop())
        loop.close()


def test_the_stats_are_served_by_the_admin_api(emu: Emulators) -> None:
    assert emu.admin("GET", "eventgrid/stats", expect=200)[1] == {
        "deliveries": 0,
        "timeouts": 0,
        "redeliveries_after_timeout": 0,
    }


def test_an_unknown_resource_has_no_operations(emu: Emulators) -> None:
    listed = emu.admin("GET", "arm/operations", expect=200)[1]
    assert listed["operations"] == [] and listed["patches"] == {}


def test_an_operation_in_flight_survives_a_restart_and_completes_after_it(tmp_path: Path) -> None:
    from tests.emulators.test_consumers_use_keys import _free_port_base

    base = _free_port_base(4)  # the same ports again, so the key URLs the server holds stay valid
    first = start_emulators(tmp_path / "run1", state_dir=tmp_path / "state", port_base=base)
    try:
        world = ConsumerWorld(first)
        name, v1 = world.new_key()
        server = world.mysql(v1)
        v2 = world.new_version(name)
        change = {"properties": {"dataEncryption": {"primaryKeyURI": v2}}}
        assert patch(world, server.resource_id, MYSQL_API, change).status_code == 202
    finally:
        assert first.stop() == 0

    second = start_emulators(tmp_path / "run2", state_dir=tmp_path / "state", port_base=base)
    try:
        again = ConsumerWorld(second)
        assert again.properties(server.resource_id, MYSQL_API)["state"] == "Updating"
        assert patch(again, server.resource_id, MYSQL_API, change).status_code == 409
        second.advance_clock(41)
        props = again.properties(server.resource_id, MYSQL_API)
        assert props["dataEncryption"]["primaryKeyURI"] == v2 and props["state"] == "Ready"
        counts = operations(again)["patches"][server.resource_id]
        assert (counts["accepted"], counts["refused"]) == (2, 1)
        again.close()
    finally:
        assert second.stop() == 0


def test_a_put_that_replaces_the_key_is_an_operation_too_and_the_sdk_follows_it(world: ConsumerWorld) -> None:
    from azure.mgmt.resource.resources.models import GenericResource

    world.emu.admin("PUT", "arm/operations", {"duration_seconds": 1}, expect=200)
    _, v1 = world.new_key()
    server = world.mysql(v1)
    v2 = new_key_for(world, server.principal_id)
    current = world.call("GET", server.resource_id, MYSQL_API)[1]
    current["properties"]["dataEncryption"]["primaryKeyURI"] = v2

    same = world.call("PUT", server.resource_id, MYSQL_API, world.call("GET", server.resource_id, MYSQL_API)[1])
    assert same[0] == 200  # nothing about the key changes: applied at once
    poller = world.arm.resources.begin_create_or_update_by_id(
        server.resource_id,
        GenericResource(location="westeurope", identity=current["identity"], properties=current["properties"]),
        api_version=MYSQL_API,
    )
    assert poller.result(timeout=30).properties["dataEncryption"]["primaryKeyURI"] == v2
    mine = [o for o in operations(world)["operations"] if o["resource_id"].lower() == server.resource_id.lower()]
    assert [(o["method"], o["status"]) for o in mine] == [("PUT", "Succeeded")]


def test_a_server_that_loses_its_key_mid_update_shows_inaccessible_and_the_update_fails(world: ConsumerWorld) -> None:
    name, v1 = world.new_key()
    server = world.mysql(v1)
    v2 = world.new_version(name)
    response = patch(world, server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"primaryKeyURI": v2}}})
    assert response.status_code == 202
    world.revoke(server.assignment)
    world.emu.advance_clock(10)
    props = world.properties(server.resource_id, MYSQL_API)
    assert props["state"] == "Inaccessible" and props["provisioningState"] == "Updating"
    world.emu.advance_clock(31)
    assert get_url(world, response.headers["Azure-AsyncOperation"]).json()["status"] == "Failed"
    assert world.properties(server.resource_id, MYSQL_API)["dataEncryption"]["primaryKeyURI"] == v1
