"""Rotation exactly once against the emulated Key Vault and Azurite, through the real adapters: racing threads, a
holder killed after its claim, and what a sweep costs in Key Vault calls (the emulator's request counters)."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from functions.rotation.rotate import CLAIM_TTL, RotationStatus, rotate_from
from functions.sweep import run_sweep
from functions.sweep_rotation import rotate_due_keys
from shared.coordination.claims import rotation_claim_id
from shared.coordination.pacing import CreationPacer
from tests.fakes.dekstore import FakeDekStore
from tests.fakes.outbound import FakeAlerts, FakeConsumers, FakeWorkQueue
from tests.fakes.revocations import FakeRevocations
from tests.support.azurite import start_azurite
from tests.support.deployment import Deployment

RACERS = 8


class ShiftedClock:
    """The app's view of time, moved without moving the emulators' clock (the session's other tests share it)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-rotation"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def stores(azurite):
    from shared.azure.audit import TableAuditTrail
    from shared.azure.claims import TableClaims
    from shared.azure.tables import LazyTable, table_client

    suffix = uuid.uuid4().hex[:10]
    claims = TableClaims(LazyTable(table_client(f"claims{suffix}", connection_string=azurite.connection_string)))
    audit = TableAuditTrail(LazyTable(table_client(f"audit{suffix}", connection_string=azurite.connection_string)))
    return claims, audit


@pytest.fixture
def deployment(cloud_with_app_identity) -> Deployment:
    return Deployment(cloud_with_app_identity)


def test_eight_threads_rotating_the_same_version_make_one_version(deployment, stores):
    claims, audit = stores
    managed = deployment.key("aks-encryption-key")
    version = deployment.vault.get_key(managed.ref).version
    barrier = threading.Barrier(RACERS)
    statuses: list[RotationStatus] = []
    errors: list[BaseException] = []

    def rotate() -> None:
        try:
            barrier.wait()
            outcome = rotate_from(
                managed,
                version,
                trigger="timer",
                reason="race",
                vault=deployment.vault,
                claims=claims,
                audit=audit,
                alerts=FakeAlerts(),
                clock=deployment.clock,
            )
            statuses.append(outcome.status)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert statuses.count(RotationStatus.ROTATED) == 1, statuses
    assert len(deployment.vault.list_versions(managed.ref)) == 2
    rotated = [r for r in audit.page(key=managed.name).items if r.outcome == "rotated"]
    assert len(rotated) == 1


def test_a_rotation_killed_after_its_claim_is_completed_by_the_next_sweep_once(deployment, stores):
    claims, audit = stores
    clock = ShiftedClock()
    clock.offset = timedelta(days=91)  # the MySQL key is past rotate_after
    mysql = deployment.key("mysql-encryption-key")
    inventory = dataclasses.replace(deployment.inventory, keys=(mysql,))
    version = deployment.vault.get_key(mysql.ref).version
    killed = claims.claim(
        rotation_claim_id(mysql.ref.vault_host, mysql.name, version), "killed", now=clock.now(), ttl=CLAIM_TTL
    )
    assert killed.taken  # ... and then the process died: no version, no completion
    ports = {
        "inventory": inventory,
        "vault": deployment.vault,
        "claims": claims,
        "audit": audit,
        "alerts": FakeAlerts(),
        "clock": clock,
        "pacer": CreationPacer(),
    }
    [during] = rotate_due_keys(**ports)
    assert during.status is RotationStatus.IN_PROGRESS and len(deployment.vault.list_versions(mysql.ref)) == 1
    clock.offset += CLAIM_TTL
    [after] = rotate_due_keys(**ports)
    assert after.status is RotationStatus.ROTATED
    clock.offset = timedelta(0)  # the new version is young: nothing is due any more
    assert rotate_due_keys(**ports) == []
    assert len(deployment.vault.list_versions(mysql.ref)) == 2
    assert deployment.vault.get_key(mysql.ref).expires is None


def _keyvault_requests(deployment: Deployment) -> int:
    counters = deployment.cloud.emulators.counters()
    return sum(op["requests"] for vault in counters.values() for op in vault.values())


def test_what_a_sweep_costs_in_key_vault_calls(deployment, stores, record_property):
    claims, audit = stores
    clock = ShiftedClock()
    ports = {
        "inventory": deployment.inventory,
        "vault": deployment.vault,
        "access": deployment.access,
        "roles": deployment.roles,
        "vault_settings": deployment.vaults,
        "clock": clock,
        "alerts": FakeAlerts(),
        "claims": claims,
        "audit": audit,
        "pacer": CreationPacer(),
        "dekstore": FakeDekStore(),
        "rewrap_queue": FakeWorkQueue(),
        "move_queue": FakeWorkQueue(),
        "consumers": FakeConsumers(),
        "revocations": FakeRevocations(),
    }
    run_sweep(**ports)  # warm: the challenge round trip and the role catalog, as a worker's first sweep pays
    keys = len(deployment.inventory.keys)
    before = _keyvault_requests(deployment)
    quiet = run_sweep(**ports)
    idle_calls = (_keyvault_requests(deployment) - before) / keys
    assert quiet.rotations == ()
    assert idle_calls <= 3, idle_calls
    clock.offset = timedelta(days=91)
    before = _keyvault_requests(deployment)
    busy = run_sweep(**ports)
    rotating_calls = (_keyvault_requests(deployment) - before) / keys
    assert [o.status for o in busy.rotations] == [RotationStatus.ROTATED] * keys
    record_property("keyvault_calls_per_key_idle_sweep", idle_calls)
    record_property("keyvault_calls_per_key_rotating_sweep", rotating_calls)
    print(f"\nKey Vault calls per managed key: idle sweep {idle_calls}, rotating sweep {rotating_calls}")
