"""The emulated MySQL server and disk encryption set really use their keys: they unwrap their own DEK as their own
identity whenever they change and whenever the clock moves, go Inaccessible (or carry an error) when they cannot,
and recover when they can again. This is what makes "never lock a consumer out" observable."""

from __future__ import annotations

import datetime as dt
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.consumers import DES_API, MYSQL_API, ConsumerWorld
from tests.support.emulators import Emulators, start_emulators


@pytest.fixture
def world(emu: Emulators) -> Iterator[ConsumerWorld]:
    """Key changes complete at once here: their timing is tests/emulators/test_long_running_operations.py's."""
    emu.admin("PUT", "arm/operations", {"duration_seconds": 0}, expect=200)
    built = ConsumerWorld(emu)
    yield built
    built.close()


def mysql_state(world: ConsumerWorld, resource_id: str) -> dict:
    return world.properties(resource_id, MYSQL_API)


def test_a_new_server_whose_identity_holds_the_role_is_ready(world: ConsumerWorld) -> None:
    _, key_id = world.new_key()
    server = world.mysql(key_id)
    props = mysql_state(world, server.resource_id)
    assert props["state"] == "Ready"
    assert props["dataEncryption"]["primaryEncryptionKeyStatus"] == "Valid"
    assert world.history(server.resource_id)["unavailable_checks"] == 0


def test_revoking_the_identitys_role_makes_the_server_inaccessible_after_the_clock_moves_and_granting_recovers(
    world: ConsumerWorld,
) -> None:
    _, key_id = world.new_key()
    server = world.mysql(key_id)
    world.revoke(server.assignment)
    world.emu.advance_clock(600)
    props = mysql_state(world, server.resource_id)
    assert props["state"] == "Inaccessible"
    assert props["dataEncryption"]["primaryEncryptionKeyStatus"] == "Invalid"
    assert "ForbiddenByRbac" in props["stateReason"]

    world.grant(server.principal_id, "e147488a-f6f5-4113-8e2d-b22465e65bf6", world.emu.key_scope(server.key_name))
    world.emu.advance_clock(600)
    props = mysql_state(world, server.resource_id)
    assert props["state"] == "Ready" and "stateReason" not in props
    history = world.history(server.resource_id)
    assert history["unavailable_checks"] >= 1 and [t["available"] for t in history["transitions"]] == [
        True,
        False,
        True,
    ]


def test_disabling_the_version_it_points_at_locks_it_out_and_a_usable_new_version_brings_it_back(
    world: ConsumerWorld,
) -> None:
    name, v1 = world.new_key()
    server = world.mysql(v1)
    world.disable(v1)
    world.emu.advance_clock(60)
    props = mysql_state(world, server.resource_id)
    assert props["state"] == "Inaccessible" and "KeyDisabled" in props["stateReason"]

    v2 = world.new_version(name)
    status, _ = world.call(
        "PATCH", server.resource_id, MYSQL_API, {"properties": {"dataEncryption": {"primaryKeyURI": v2}}}
    )
    assert status == 202
    props = mysql_state(world, server.resource_id)
    assert props["state"] == "Ready" and props["dataEncryption"]["primaryKeyURI"] == v2


def test_an_expired_version_still_unwraps_so_the_server_stays_ready(world: ConsumerWorld) -> None:
    name, _ = world.new_key()
    expiring = world.keys.create_rsa_key(name, size=2048, expires_on=None)
    server = world.mysql(expiring.id)
    now = dt.datetime.fromisoformat(world.emu.clock()["now"].replace("Z", "+00:00"))
    world.keys.update_key_properties(name, expiring.properties.version, expires_on=now + dt.timedelta(days=1))
    world.emu.advance_clock(iso="P2D")
    assert mysql_state(world, server.resource_id)["state"] == "Ready"


def test_deleting_the_key_or_the_identity_locks_the_server_out(world: ConsumerWorld) -> None:
    name, key_id = world.new_key()
    by_key = world.mysql(key_id)
    _, other_key = world.new_key()
    by_identity = world.mysql(other_key)
    world.keys.begin_delete_key(name).wait()
    identity_id = world.properties(by_identity.resource_id, MYSQL_API)["dataEncryption"][
        "primaryUserAssignedIdentityId"
    ]
    assert world.call("DELETE", identity_id, "2023-01-31")[0] == 200
    world.emu.advance_clock(60)
    assert "KeyNotFound" in mysql_state(world, by_key.resource_id)["stateReason"]
    assert "IdentityNotFound" in mysql_state(world, by_identity.resource_id)["stateReason"]


def test_a_des_reports_losing_its_key_as_an_error_and_clears_it_on_recovery(world: ConsumerWorld) -> None:
    _, key_id = world.new_key()
    des = world.des(key_id)
    assert "autoKeyRotationError" not in world.properties(des.resource_id, DES_API)
    world.revoke(des.assignment)
    world.emu.advance_clock(60)
    error = world.properties(des.resource_id, DES_API)["autoKeyRotationError"]
    assert error["code"] == "ForbiddenByRbac" and "unwrapkey" in error["message"]
    world.grant(des.principal_id, "e147488a-f6f5-4113-8e2d-b22465e65bf6", world.emu.key_scope(des.key_name))
    world.emu.advance_clock(60)
    assert "autoKeyRotationError" not in world.properties(des.resource_id, DES_API)


def test_a_des_following_latest_moves_to_a_new_version_only_after_the_delay(world: ConsumerWorld) -> None:
    name, v1 = world.new_key()
    des = world.des(v1, follow_latest=True)
    v2 = world.new_version(name)
    world.emu.advance_clock(60)
    assert world.properties(des.resource_id, DES_API)["activeKey"]["keyUrl"] == v1

    world.emu.advance_clock(3600)
    props = world.properties(des.resource_id, DES_API)
    assert props["activeKey"]["keyUrl"] == v2
    assert [k["keyUrl"] for k in props["previousKeys"]] == [v1]
    assert "lastKeyRotationTimestamp" in props and "autoKeyRotationError" not in props
    assert world.history(des.resource_id)["unavailable_checks"] == 0


def test_a_des_not_following_latest_stays_where_it_was_pointed(world: ConsumerWorld) -> None:
    name, v1 = world.new_key()
    des = world.des(v1)
    world.new_version(name)
    world.emu.advance_clock(iso="P1D")
    assert world.properties(des.resource_id, DES_API)["activeKey"]["keyUrl"] == v1


def test_the_history_counts_checks_and_can_be_cleared(world: ConsumerWorld) -> None:
    _, key_id = world.new_key()
    server = world.mysql(key_id)
    before = world.history(server.resource_id)["available_checks"]
    world.emu.advance_clock(1)
    assert world.history(server.resource_id)["available_checks"] > before
    world.emu.admin("DELETE", "consumers", expect=204)
    assert world.emu.admin("GET", "consumers", expect=200)[1]["consumers"] == {}


def test_the_local_runs_seeded_consumers_can_use_their_keys_from_the_start(emu: Emulators, tmp_path) -> None:
    from localrun.cloud import Cloud, Identities, seed

    inventory = seed(
        Cloud(emu.info, Identities.load_or_create(tmp_path / "ids.json"), resource_group="rg-cmk-reference")
    )
    consumers = emu.admin("GET", "consumers", expect=200)[1]["consumers"]
    seeded = [c.resource_id for key in inventory.keys for c in key.consumers if c.kind.value != "dek-table"]
    assert seeded and {rid.lower() for rid in seeded} <= {rid.lower() for rid in consumers}
    for rid in seeded:
        history = next(v for k, v in consumers.items() if k.lower() == rid.lower())
        assert history["available_checks"] >= 1 and history["unavailable_checks"] == 0, (rid, history)


def test_deleting_the_vault_locks_its_consumers_out(world: ConsumerWorld) -> None:
    _, key_id = world.new_key()
    server = world.mysql(key_id)
    assert world.call("DELETE", world.emu.vault_resource_id(), "2023-07-01")[0] == 200
    world.emu.advance_clock(60)
    assert "KeyVaultNotFound" in mysql_state(world, server.resource_id)["stateReason"]


def _free_port_base(count: int) -> int:
    for _ in range(50):
        base = random.randint(20000, 60000)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range")


def test_a_consumer_survives_a_restart_and_goes_on_checking_its_key(tmp_path: Path) -> None:
    base = _free_port_base(4)  # the same ports again, so the key URLs the servers hold stay valid
    first = start_emulators(tmp_path / "run1", state_dir=tmp_path / "state", port_base=base)
    try:
        world = ConsumerWorld(first)
        _, key_id = world.new_key()
        server = world.mysql(key_id)
    finally:
        assert first.stop() == 0

    second = start_emulators(tmp_path / "run2", state_dir=tmp_path / "state", port_base=base)
    try:
        again = ConsumerWorld(second)
        second.advance_clock(60)
        assert again.properties(server.resource_id, MYSQL_API)["state"] == "Ready"
        assert again.history(server.resource_id)["unavailable_checks"] == 0
        again.revoke(server.assignment)
        second.advance_clock(60)
        assert again.properties(server.resource_id, MYSQL_API)["state"] == "Inaccessible"
        again.close()
    finally:
        assert second.stop() == 0


def test_a_des_with_an_error_does_not_rotate_until_the_error_is_fixed(world: ConsumerWorld) -> None:
    name, v1 = world.new_key()
    des = world.des(v1, follow_latest=True)
    world.revoke(des.assignment)
    v2 = world.new_version(name)
    world.emu.advance_clock(2 * 3600)
    props = world.properties(des.resource_id, DES_API)
    assert props["activeKey"]["keyUrl"] == v1 and props["autoKeyRotationError"]["code"] == "ForbiddenByRbac"

    world.grant(des.principal_id, "e147488a-f6f5-4113-8e2d-b22465e65bf6", world.emu.key_scope(name))
    world.emu.advance_clock(1)
    world.emu.advance_clock(1)
    props = world.properties(des.resource_id, DES_API)
    assert props["activeKey"]["keyUrl"] == v2 and "autoKeyRotationError" not in props


def test_a_des_that_cannot_use_the_newest_version_stays_on_its_own_and_says_why(world: ConsumerWorld) -> None:
    name, v1 = world.new_key()
    des = world.des(v1, follow_latest=True)
    v2 = world.new_version(name)
    world.disable(v2)
    world.emu.advance_clock(2 * 3600)
    world.emu.advance_clock(60)
    props = world.properties(des.resource_id, DES_API)
    assert props["activeKey"]["keyUrl"] == v1
    assert props["autoKeyRotationError"]["code"] == "KeyDisabled"
    assert world.history(des.resource_id)["unavailable_checks"] == 0  # its disks still open with v1

    world.keys.update_key_properties(name, v2.rsplit("/", 1)[1], enabled=True)
    world.emu.advance_clock(60)
    assert world.properties(des.resource_id, DES_API)["activeKey"]["keyUrl"] == v1  # not retried on its own

    status, _ = world.call("PATCH", des.resource_id, DES_API, {"tags": {"fixed": "yes"}})  # the owner fixes it
    assert status == 202
    props = world.properties(des.resource_id, DES_API)
    assert props["activeKey"]["keyUrl"] == v2 and "autoKeyRotationError" not in props
