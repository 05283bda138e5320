"""RBAC propagation as Azure has it: ARM lists an assignment change at once, Key Vault applies it after a delay of
its own (0..max emulated seconds), changes overtake each other yet converge to ARM's state, and consumers check
their key at every emulated minute while any change is pending."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import KeyWrapAlgorithm

from emulators.config import ConfigError, parse_config
from emulators.rbac_propagation import RbacPropagation
from tests.emulators.conftest import CRYPTO_SERVICE_ENCRYPTION_USER, OPERATOR, Grant
from tests.support.consumers import MYSQL_API, ConsumerWorld
from tests.support.emulators import Emulators, start_emulators

pytestmark = pytest.mark.emulator

ALG = KeyWrapAlgorithm.rsa_oaep_256


# ---- the model alone --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(200))
def test_a_grant_then_delete_of_one_assignment_ends_with_no_access_whatever_the_draw(seed: int) -> None:
    rbac: RbacPropagation[str] = RbacPropagation(max_seconds=600, seed=seed)
    rbac.record("a1", "grant", now=0.0)
    rbac.record("a1", None, now=1.0)
    grant, delete = rbac.pending
    rbac.apply_due(max(grant.effective_at, delete.effective_at))
    assert rbac.effective == {} and rbac.pending == []


def test_some_draw_lets_a_removal_overtake_the_grant_issued_before_it() -> None:
    """The case the rule exists for: the delete lands first, the older grant later, and is dropped."""
    for seed in range(1000):
        rbac: RbacPropagation[str] = RbacPropagation(max_seconds=600, seed=seed)
        rbac.record("a1", "grant", now=0.0)
        rbac.record("a1", None, now=1.0)
        grant, delete = rbac.pending
        if delete.effective_at < grant.effective_at:
            rbac.apply_due(delete.effective_at)
            assert rbac.effective == {}
            rbac.apply_due(grant.effective_at)
            assert rbac.effective == {}, "a stale grant applied after the later delete"
            return
    pytest.fail("no seed made the delete overtake the grant")


def test_draws_are_reproducible_per_seed_and_within_the_maximum() -> None:
    def draws(seed: int) -> list[float]:
        rbac: RbacPropagation[str] = RbacPropagation(max_seconds=600, seed=seed)
        for i in range(50):
            rbac.record(f"a{i}", "grant", now=0.0)
        return [c.effective_at for c in rbac.pending]

    assert draws(7) == draws(7) != draws(8)
    assert all(0 <= d <= 600 for d in draws(7))


def test_max_zero_applies_at_once_and_counts_no_window() -> None:
    rbac: RbacPropagation[str] = RbacPropagation(max_seconds=0)
    rbac.record("a1", "grant", now=5.0)
    assert rbac.effective == {"a1": "grant"} and rbac.pending == [] and rbac.windows == 0


def test_pending_changes_survive_snapshot_and_restore() -> None:
    rbac: RbacPropagation[dict] = RbacPropagation(max_seconds=600, seed=3)
    rbac.record("a1", {"p": 1}, now=0.0)
    rbac.record("a2", {"p": 2}, now=0.0)
    rbac.apply_due(min(c.effective_at for c in rbac.pending))
    rbac.count_check({"/s/x": False})
    again: RbacPropagation[dict] = RbacPropagation(max_seconds=0)
    again.restore(rbac.snapshot(dict), dict)
    assert again.to_json(0.0) == rbac.to_json(0.0)
    assert again.effective == rbac.effective
    again.record("a3", {"p": 3}, now=1.0)  # numbering goes on: the next draw is the one the original would make
    rbac.record("a3", {"p": 3}, now=1.0)
    assert again.pending[-1].effective_at == rbac.pending[-1].effective_at


def test_the_config_names_a_bad_maximum() -> None:
    assert parse_config({"rbac_propagation_max_seconds": 0}).rbac_propagation_max_seconds == 0
    assert parse_config({}).rbac_propagation_max_seconds == 600
    with pytest.raises(ConfigError, match="rbac_propagation_max_seconds"):
        parse_config({"rbac_propagation_max_seconds": -1})
    with pytest.raises(ConfigError, match="rbac_propagation_seed"):
        parse_config({"rbac_propagation_seed": "x"})


# ---- over the wire ----------------------------------------------------------------------------------------------
@pytest.fixture
def slow(emu: Emulators) -> Emulators:
    """The session's emulators with Azure's propagation (up to 600 emulated s); reset puts the configured 0 back."""
    emu.set_rbac_propagation(600)
    return emu


def _wrapped(emu: Emulators, admin_client: KeyClient, name: str) -> tuple[str, bytes, bytes]:
    key = admin_client.create_rsa_key(name, size=2048)
    dek = os.urandom(32)
    return key.id, dek, emu.crypto_client(key, OPERATOR).wrap_key(ALG, dek).encrypted_key


def _unwrap_status(emu: Emulators, key_id: str, principal: str, wrapped: bytes, dek: bytes) -> int:
    try:
        assert emu.crypto_client(key_id, principal).unwrap_key(ALG, wrapped).key == dek
    except HttpResponseError as exc:
        return exc.status_code
    return 200


def _pending_for(emu: Emulators, assignment_name: str) -> dict:
    return next(p for p in emu.rbac_propagation()["pending"] if p["assignment_id"].endswith(assignment_name))


def test_a_grant_is_listed_at_once_but_unwrap_is_forbidden_until_its_delay_passes(
    admin_client: KeyClient, grant: Grant, slow: Emulators
) -> None:
    key_id, dek, wrapped = _wrapped(slow, admin_client, "cmk-prop-grant")
    service = str(uuid.uuid4())
    name = grant(service, CRYPTO_SERVICE_ENCRYPTION_USER, slow.key_scope("cmk-prop-grant"))
    with slow.authorization_client(OPERATOR) as client:
        listed = [a.name for a in client.role_assignments.list_for_scope(slow.key_scope("cmk-prop-grant"))]
    assert name in listed
    due = _pending_for(slow, name)["due_in_seconds"]
    assert 0 <= due <= 600
    if due > 2:
        assert _unwrap_status(slow, key_id, service, wrapped, dek) == 403
        slow.advance_clock(due - 2)
        assert _unwrap_status(slow, key_id, service, wrapped, dek) == 403
    slow.let_rbac_propagate()
    assert _unwrap_status(slow, key_id, service, wrapped, dek) == 200


def test_a_deleted_assignment_keeps_working_until_its_delay_passes(
    emu: Emulators, admin_client: KeyClient, grant: Grant
) -> None:
    key_id, dek, wrapped = _wrapped(emu, admin_client, "cmk-prop-delete")
    service = str(uuid.uuid4())
    name = grant(service, CRYPTO_SERVICE_ENCRYPTION_USER, emu.key_scope("cmk-prop-delete"))  # max 0: at once
    assert _unwrap_status(emu, key_id, service, wrapped, dek) == 200
    emu.set_rbac_propagation(600)
    with emu.authorization_client(OPERATOR) as client:
        client.role_assignments.delete(emu.key_scope("cmk-prop-delete"), name)
        assert name not in [a.name for a in client.role_assignments.list_for_scope(emu.key_scope("cmk-prop-delete"))]
    due = _pending_for(emu, name)["due_in_seconds"]
    if due > 2:
        emu.advance_clock(due - 2)
        assert _unwrap_status(emu, key_id, service, wrapped, dek) == 200
    emu.let_rbac_propagate()
    assert _unwrap_status(emu, key_id, service, wrapped, dek) == 403


def test_settle_moves_the_clock_by_the_longest_pending_delay_and_max_zero_is_immediate(
    admin_client: KeyClient, grant: Grant, slow: Emulators
) -> None:
    admin_client.create_rsa_key("cmk-prop-settle", size=2048)
    for _ in range(3):
        grant(str(uuid.uuid4()), CRYPTO_SERVICE_ENCRYPTION_USER, slow.key_scope("cmk-prop-settle"))
    before = slow.clock()["timestamp"]
    longest = max(p["effective_at"] for p in slow.rbac_propagation()["pending"])
    settled = slow.let_rbac_propagate()
    after = slow.clock()["timestamp"]
    assert settled["pending"] == [] and settled["windows"] == 3
    assert longest <= after < longest + 5 and after - before <= 600 + 5

    slow.set_rbac_propagation(0)
    key_id, dek, wrapped = _wrapped(slow, admin_client, "cmk-prop-zero")
    service = str(uuid.uuid4())
    grant(service, CRYPTO_SERVICE_ENCRYPTION_USER, slow.key_scope("cmk-prop-zero"))
    assert slow.rbac_propagation()["pending"] == []
    assert _unwrap_status(slow, key_id, service, wrapped, dek) == 200


@pytest.fixture
def world(emu: Emulators) -> Iterator[ConsumerWorld]:
    built = ConsumerWorld(emu)
    yield built
    built.close()


def _unavailable(emu: Emulators, resource_id: str) -> int:
    counts = emu.rbac_propagation()["unavailable"]
    return sum(n for rid, n in counts.items() if rid.lower() == resource_id.lower())


def test_consumers_check_every_emulated_minute_and_a_bad_swap_is_counted_as_unavailable(
    world: ConsumerWorld,
) -> None:
    emu = world.emu
    _, key_id = world.new_key()
    server = world.mysql(key_id)  # granted at max 0: in effect before the test starts
    emu.set_rbac_propagation(120)
    # The swap done badly: the only grant removed first, its replacement made only after the removal took effect.
    world.revoke(server.assignment)
    emu.advance_clock(125)
    assert world.properties(server.resource_id, MYSQL_API)["state"] == "Inaccessible"
    world.grant(server.principal_id, CRYPTO_SERVICE_ENCRYPTION_USER, emu.key_scope(server.key_name))
    emu.advance_clock(2 * 86400)  # a long jump: minute steps only while the grant is pending, then one jump
    status = emu.rbac_propagation()
    assert status["windows"] == 2 and status["pending"] == []
    assert _unavailable(emu, server.resource_id) >= 1
    # At least one check per emulated minute of the two windows (<= 120 s each), and no minute-stepping of 2 days.
    assert 2 <= status["minute_checks"] <= 12
    assert world.properties(server.resource_id, MYSQL_API)["state"] == "Ready"


def test_a_good_swap_leaves_the_consumer_available_at_every_checked_minute(world: ConsumerWorld) -> None:
    emu = world.emu
    _, key_id = world.new_key()
    server = world.mysql(key_id)
    emu.set_rbac_propagation(600)
    # The replacement (here at the vault) in effect before the old grant goes: the order a careful swap keeps.
    replacement = world.grant(server.principal_id, CRYPTO_SERVICE_ENCRYPTION_USER, emu.vault_resource_id())
    emu.let_rbac_propagate()
    world.revoke(server.assignment)
    emu.let_rbac_propagate()
    status = emu.rbac_propagation()
    assert status["minute_checks"] >= 2 and _unavailable(emu, server.resource_id) == 0
    assert world.properties(server.resource_id, MYSQL_API)["state"] == "Ready"
    assert replacement


def test_pending_changes_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_emulators(tmp_path / "a", state_dir=state, rbac_propagation_max_seconds=600)
    try:
        with first.authorization_client(OPERATOR) as client:
            name = str(uuid.uuid4())
            client.role_assignments.create(
                first.vault_resource_id(),
                name,
                {
                    "properties": {
                        "roleDefinitionId": f"/subscriptions/{first.subscription_id}/providers/"
                        f"Microsoft.Authorization/roleDefinitions/{CRYPTO_SERVICE_ENCRYPTION_USER}",
                        "principalId": str(uuid.uuid4()),
                        "principalType": "ServicePrincipal",
                    }
                },
            )
        before = first.rbac_propagation()["pending"]
    finally:
        first.stop()
    second = start_emulators(tmp_path / "b", state_dir=state, rbac_propagation_max_seconds=600)
    try:
        after = second.rbac_propagation()
        assert [(p["assignment_id"], p["effective_at"]) for p in after["pending"]] == [
            (p["assignment_id"], p["effective_at"]) for p in before
        ]
        assert second.let_rbac_propagate()["windows"] == 1
    finally:
        second.stop()


def test_the_admin_api_names_a_bad_setting_and_reset_restores_the_configured_one(emu: Emulators) -> None:
    status, error = emu.admin("PUT", "rbac/propagation", {"max_seconds": -5})
    assert status == 400 and "max_seconds" in error["error"]["message"]
    status, error = emu.admin("PUT", "rbac/propagation", {"max_seconds": 60, "seed": "x"})
    assert status == 400 and "seed" in error["error"]["message"]
    assert emu.admin("PUT", "rbac/propagation", {"max_seconds": 60, "seed": 4}, expect=200)[1]["max_seconds"] == 60
    emu.reset()
    assert emu.rbac_propagation() == {
        "max_seconds": 0,
        "pending": [],
        "windows": 0,
        "minute_checks": 0,
        "unavailable": {},
    }
