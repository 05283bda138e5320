"""FakeConsumers and AzureConsumers (azure-mgmt-resource generic resources against the ARM emulator, whose consumers
really unwrap with their keys) must agree: what a consumer reports, how a move is started and followed (ARM's
long-running PATCH: 202, InProgress, then Succeeded or Failed; 409 while one is in flight), and what is refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from shared.errors import InvalidInput, NotFound, OperationInProgress
from shared.model import ConsumerKind
from shared.moves import MoveStatus
from shared.ports import Consumers
from tests.fakes.clock import FakeClock
from tests.fakes.outbound import FakeConsumers

SUB = "00000000-0000-0000-0000-0000000000aa"
MYSQL = ConsumerKind.MYSQL_FLEXIBLE_SERVER.value
DES = ConsumerKind.DISK_ENCRYPTION_SET.value


@dataclass
class Made:
    resource_id: str
    key_url: str
    key_name: str
    geo_key_url: str | None = None
    principal_id: str | None = None  # the identity the consumer reaches its key with


@dataclass
class Side:
    """One backend and how a test arranges things on it (the fake directly; the emulated cloud as a deployment)."""

    consumers: Consumers
    group: str  # resource group id for made-up resource ids
    make: Callable[..., Made]  # make(kind, geo=False) -> Made
    new_version: Callable[[str], str]  # key name -> versioned URL of a new version
    lose_key: Callable[[str, Made], None]  # the consumer's identity loses its role on the key
    tick: Callable[[], None]  # time passes (the fake's clock; the emulators' movable clock)
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def _fake_side() -> Side:
    clock = FakeClock()
    fake = FakeConsumers(clock, lro_duration=timedelta(seconds=40))  # longer than Event Grid's 30 s, as in Azure
    group = f"/subscriptions/{SUB}/resourceGroups/rg"

    def version_url(name: str) -> str:
        return f"https://kv-contract.vault.azure.net/keys/{name}/{uuid.uuid4().hex}"

    def make(kind: str, geo: bool = False) -> Made:
        name = f"cmk-{uuid.uuid4().hex[:6]}"
        provider = "Microsoft.DBforMySQL/flexibleServers" if kind == MYSQL else "Microsoft.Compute/diskEncryptionSets"
        made = Made(f"{group}/providers/{provider}/c-{uuid.uuid4().hex[:6]}", version_url(name), name)
        made.principal_id = str(uuid.uuid4())
        if geo:
            made.geo_key_url = version_url(name)
        fake.add(
            kind,
            made.resource_id,
            made.key_url,
            other_key_urls=(made.geo_key_url,) if geo else (),
            identities=(made.principal_id,),
        )
        return made

    def lose(kind: str, made: Made) -> None:
        fake.set_available(kind, made.resource_id, False, "ForbiddenByRbac: unwrapkey refused")

    return Side(fake, group, make, version_url, lose, lambda: clock.advance(timedelta(seconds=30)))


def _emulator_side(cloud) -> Side:
    from shared.azure.consumers import AzureConsumers
    from tests.support.consumers import ConsumerWorld

    world = ConsumerWorld(cloud.emulators)
    # A key change is a long-running operation that takes time; short here, so the adapter's poller really waits.
    cloud.emulators.admin("PUT", "arm/operations", {"duration_seconds": 1}, expect=200)
    adapter = AzureConsumers(
        cloud.credential(), base_url=cloud.emulators.arm_url, connection_verify=cloud.emulators.ca_cert
    )
    made_assignments: dict[str, str] = {}

    def make(kind: str, geo: bool = False) -> Made:
        name, key_url = world.new_key()
        geo_url = world.new_version(name) if geo else None
        if geo:  # the primary stays on the first version; the geo-backup key is another version
            consumer = world.mysql(key_url, geo_key_id=geo_url)
        else:
            consumer = world.mysql(key_url) if kind == MYSQL else world.des(key_url)
        made_assignments[consumer.resource_id] = consumer.assignment
        return Made(consumer.resource_id, key_url, name, geo_url, consumer.principal_id)

    def lose(kind: str, made: Made) -> None:
        world.revoke(made_assignments[made.resource_id])
        cloud.emulators.advance_clock(600)

    side = Side(adapter, world.group, make, world.new_version, lose, lambda: cloud.emulators.advance_clock(30))
    side.cleanup += [adapter.close, world.close]
    return side


@pytest.fixture(params=["fake", "emulator"])
def side(request) -> Iterator[Side]:
    if request.param == "fake":
        yield _fake_side()
        return
    built = _emulator_side(request.getfixturevalue("cloud_with_app_identity"))
    try:
        yield built
    finally:
        for step in built.cleanup:
            step()


@pytest.mark.parametrize("kind", [MYSQL, DES])
def test_a_consumer_reports_the_version_it_uses_and_that_it_can_use_it(side: Side, kind: str) -> None:
    made = side.make(kind)
    state = side.consumers.get_state(kind, made.resource_id)
    assert state.kind == ConsumerKind(kind) and state.resource_id == made.resource_id
    assert state.key_url == made.key_url
    assert state.available is True and state.error is None
    assert state.follows_latest is False
    # the identity it really uses, resolved to its principal (the server's document names only the UAMI)
    assert state.identities == (made.principal_id.lower(),) and state.unresolved_identities == ()


def _follow(side: Side, kind: str, resource_id: str, operation_url: str | None) -> MoveStatus:
    """Read the operation's status, letting time pass between reads, until it is over (at most 20 emulated min)."""
    for _ in range(40):
        status = side.consumers.move_status(kind, resource_id, operation_url)
        if status.done:
            return status
        side.tick()
    raise AssertionError("the move never finished")


@pytest.mark.parametrize("kind", [MYSQL, DES])
def test_a_started_move_is_followed_to_its_end_and_the_consumer_reports_the_new_version(side: Side, kind: str) -> None:
    made = side.make(kind)
    moved_to = side.new_version(made.key_name)
    started = side.consumers.start_move(kind, made.resource_id, moved_to)
    # ARM answered 202 with the operation to follow. (Today's emulator may report it Succeeded at once: a valid,
    # short long-running operation. With the emulator's timed operations the first read must be InProgress.)
    assert started.operation_url is not None and started.operation_url.startswith("https://")
    assert _follow(side, kind, made.resource_id, started.operation_url) == MoveStatus("Succeeded")
    state = side.consumers.get_state(kind, made.resource_id)
    assert state.key_url == moved_to and state.available is True


@pytest.mark.parametrize("kind", [MYSQL, DES])
def test_a_second_move_while_one_is_in_flight_is_refused_as_in_progress(side: Side, kind: str) -> None:
    made = side.make(kind)
    first = side.new_version(made.key_name)
    started = side.consumers.start_move(kind, made.resource_id, first)
    try:
        side.consumers.start_move(kind, made.resource_id, side.new_version(made.key_name))
    except OperationInProgress as refused:
        assert refused.code == "OperationInProgress"
        assert _follow(side, kind, made.resource_id, started.operation_url).status == "Succeeded"
        assert side.consumers.get_state(kind, made.resource_id).key_url == first
    else:  # accepted: only if the first operation was already over (today's emulator finishes at once)
        assert side.consumers.move_status(kind, made.resource_id, started.operation_url).done


def test_a_move_the_consumer_cannot_complete_fails_or_leaves_it_unavailable(side: Side) -> None:
    made = side.make(MYSQL)
    side.lose_key(MYSQL, made)  # the server's identity cannot use the key any more
    if isinstance(side.consumers, FakeConsumers):
        side.consumers.fail_next_move("KeyVaultAccessForbidden: the identity cannot use the key")
    moved_to = side.new_version(made.key_name)
    started = side.consumers.start_move(MYSQL, made.resource_id, moved_to)
    status = _follow(side, MYSQL, made.resource_id, started.operation_url)
    state = side.consumers.get_state(MYSQL, made.resource_id)
    # Timed operations: Failed, and the server keeps its old key. (Today's emulator: Succeeded, server unavailable.)
    assert (status.status == "Failed" and status.error) or not state.available
    if status.status == "Failed":
        assert state.key_url == made.key_url


def test_an_operation_url_that_is_not_arms_is_refused_naming_it(side: Side) -> None:
    made = side.make(MYSQL)
    with pytest.raises(InvalidInput) as refused:
        side.consumers.move_status(MYSQL, made.resource_id, "https://attacker.example/operations/1")
    assert refused.value.field == "operation_url"
    assert side.consumers.move_status(MYSQL, made.resource_id, None) == MoveStatus("Succeeded")  # ARM answered 200


def test_a_mysql_geo_backup_key_is_reported_as_another_key_in_use(side: Side) -> None:
    made = side.make(MYSQL, geo=True)
    state = side.consumers.get_state(MYSQL, made.resource_id)
    assert state.other_key_urls == (made.geo_key_url,)
    assert state.key_urls_in_use == (made.key_url, made.geo_key_url)


@pytest.mark.parametrize("kind", [MYSQL, DES])
def test_a_versionless_key_url_is_refused_naming_key_url(side: Side, kind: str) -> None:
    made = side.make(kind)
    versionless = made.key_url.rsplit("/", 1)[0]
    for bad in (versionless, versionless + "/", "http://kv.example/keys/x/" + "0" * 32, ""):
        with pytest.raises(InvalidInput) as refused:
            side.consumers.start_move(kind, made.resource_id, bad)
        assert refused.value.field == "key_url"
    assert side.consumers.get_state(kind, made.resource_id).key_url == made.key_url


@pytest.mark.parametrize("kind", [MYSQL, DES])
def test_an_unknown_resource_is_not_found(side: Side, kind: str) -> None:
    made = side.make(kind)
    missing = made.resource_id.rsplit("/", 1)[0] + "/missing-" + uuid.uuid4().hex[:6]
    with pytest.raises(NotFound):
        side.consumers.get_state(kind, missing)
    with pytest.raises(NotFound):
        side.consumers.start_move(kind, missing, made.key_url)


def test_an_id_of_another_resource_type_or_an_unknown_kind_is_refused(side: Side) -> None:
    made = side.make(DES)
    with pytest.raises(InvalidInput) as refused:
        side.consumers.get_state(MYSQL, made.resource_id)
    assert refused.value.field == "resource_id"
    with pytest.raises(InvalidInput) as refused:
        side.consumers.get_state("dek-table", made.resource_id)
    assert refused.value.field == "kind"


@pytest.mark.parametrize("kind", [MYSQL, DES])
def test_a_consumer_that_lost_its_key_reports_it_with_the_services_words(side: Side, kind: str) -> None:
    made = side.make(kind)
    side.lose_key(kind, made)
    state = side.consumers.get_state(kind, made.resource_id)
    assert state.available is False
    assert state.error and "ForbiddenByRbac" in state.error
    assert state.key_url == made.key_url
