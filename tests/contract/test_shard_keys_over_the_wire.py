"""Shard keys over the wire: the Key Vault emulator through the unchanged SDK (as the opener's own identity, over
HTTPS) and the DEK and shard-key tables on Azurite. A revocation of the opener's role or a crypto-shred of the KEK
stops every open once CMK_SHARD_KEY_TTL_SECONDS has passed since the shard key was unwrapped, never later; a KEK
rotation re-wraps shard keys with one unwrapKey per shard (counted by the emulator's own request counters)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator

import pytest

from shared import roles
from shared.envelope import ShardKeyCache, create_sharded_dek, decrypt, encrypt, open_any, rewrap_shard_keys
from shared.errors import Forbidden
from shared.inventory import load_inventory
from shared.inventory.model import Consumer
from shared.model import ConsumerKind
from tests.support.azurite import start_azurite

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
TTL = 30.0
SHARDS = 4


class Ticker:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-shard-keys-wire"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def setup(cloud_with_app_identity, azurite):
    from shared.azure.dekstore import TableDekStore
    from shared.azure.keyvault import AzureKeyVault
    from shared.azure.shardkeys import TableShardKeyStore
    from shared.azure.tables import LazyTable, table_client

    cloud = cloud_with_app_identity
    name = f"sk-{uuid.uuid4().hex[:10]}"
    reference = load_inventory(ROOT / "inventory/reference.yaml", {}).key("mysql-encryption-key")
    options = {"table": "cmkdeks", "partition_prefix": f"{name}-", "shards": SHARDS, "hierarchy": "shard-keys"}
    managed = dataclasses.replace(
        reference,
        name=name,
        vault=dataclasses.replace(reference.vault, url=cloud.vault_url.rstrip("/")),
        consumers=(Consumer(ConsumerKind.DEK_TABLE, None, options),),
    )
    admin = cloud.app_keyvault()
    admin.create_key(managed.ref, kty="RSA", size=2048, ops=("wrapKey", "unwrapKey"))
    opener = str(uuid.uuid4())  # the application that opens DEKs, with a role of its own on the key
    assignment = cloud.app_access().create_assignment(
        cloud.emulators.key_scope(name),
        roles.role_definition_id(cloud.subscription_id, roles.CRYPTO_SERVICE_ENCRYPTION_USER),
        opener,
        "ServicePrincipal",
    )
    cloud.emulators.let_rbac_propagate()
    vault = AzureKeyVault(
        cloud.emulators.credential(opener), connection_verify=cloud.emulators.ca_cert, verify_challenge_resource=False
    )
    connection = azurite.connection_string
    store = TableDekStore(LazyTable(table_client(f"deks{uuid.uuid4().hex[:10]}", connection_string=connection)))
    shardkeys = TableShardKeyStore(LazyTable(table_client(f"sk{uuid.uuid4().hex[:10]}", connection_string=connection)))
    ticker = Ticker()
    cache = ShardKeyCache(TTL, monotonic=ticker)
    return dataclasses.make_dataclass(
        "Setup", ["cloud", "managed", "admin", "assignment", "vault", "store", "shardkeys", "cache", "ticker"]
    )(cloud, managed, admin, assignment, vault, store, shardkeys, cache, ticker)


def _make(s, count: int) -> dict:
    blobs = {}
    for i in range(count):
        with create_sharded_dek(s.managed, vault=s.vault, store=s.store, shardkeys=s.shardkeys, cache=s.cache) as dek:
            blobs[(dek.partition, dek.dek_id)] = (encrypt(dek, b"row %d" % i), b"row %d" % i)
    return blobs


def _open(s, key, cache=None):
    return open_any(*key, vault=s.vault, store=s.store, shardkeys=s.shardkeys, cache=cache or s.cache)


def _refused_everywhere(s, blobs) -> None:
    for key in blobs:
        with pytest.raises(Forbidden):
            _open(s, key)
        with pytest.raises(Forbidden):
            _open(s, key, cache=ShardKeyCache(TTL))  # a fresh opener fares no better


def _opens_everywhere(s, blobs) -> None:
    for key, (blob, plain) in blobs.items():
        with _open(s, key) as dek:
            assert decrypt(dek, blob) == plain


def test_after_a_revoked_role_no_open_succeeds_once_the_ttl_has_passed(setup):
    s = setup
    blobs = _make(s, 12)
    s.cache.clear()
    _opens_everywhere(s, blobs)  # each shard key unwrapped once, as the opener, at t=0
    s.cloud.app_access().delete_assignment(s.assignment.id)
    s.cloud.emulators.let_rbac_propagate()
    s.ticker.t = TTL - 1
    _opens_everywhere(s, blobs)  # within the TTL, from memory: the bound the setting documents
    s.ticker.t = TTL
    _refused_everywhere(s, blobs)
    s.ticker.t = 10 * TTL
    _refused_everywhere(s, blobs)


def test_after_a_crypto_shred_no_open_succeeds_once_the_ttl_has_passed(setup):
    s = setup
    blobs = _make(s, 12)
    s.cache.clear()
    _opens_everywhere(s, blobs)
    current = s.admin.get_key(s.managed.ref)
    s.admin.update_version(s.managed.ref, current.version, enabled=False)  # shredded: the KEK version disabled
    s.ticker.t = TTL - 0.5
    _opens_everywhere(s, blobs)
    s.ticker.t = TTL + 0.5
    _refused_everywhere(s, blobs)


def test_a_kek_rotation_costs_one_unwrap_per_shard_over_the_wire(setup):
    s = setup
    blobs = _make(s, 40)
    shards = sorted({p for p, _ in blobs})
    target = s.admin.rotate_key(s.managed.ref)
    before = s.cloud.emulators.counters()
    done = [rewrap_shard_keys(s.managed, shard, target, vault=s.admin, shardkeys=s.shardkeys) for shard in shards]
    after = s.cloud.emulators.counters()
    assert sum(d.vault_calls for d in done) == len(shards) == SHARDS
    unwraps = _unwraps(after) - _unwraps(before)
    assert unwraps == SHARDS, (before, after)
    s.admin.update_version(s.managed.ref, _old_version(s, target), enabled=False)
    s.cache.clear()
    _opens_everywhere(s, blobs)  # every DEK still opens: only its shard key moved


class _Inventory:
    def __init__(self, *keys) -> None:
        self.keys = keys

    def key(self, name: str):
        return next(k for k in self.keys if k.name == name)


class _Unlimited:
    def reserve(self, scope, want, *, now, limit_per_window, window):
        from shared.coordination.budget import BudgetGrant

        return BudgetGrant(want)


def test_a_whole_rotation_through_the_worker_costs_shards_plus_three_requests_over_the_wire(setup):
    """Issue 21: the fan-out and every shard message in one process, through the vault port shared.bootstrap builds
    (the adapter under its cache of versioned reads): one unwrapKey per shard and three key reads whatever the
    number of shards (see below). No read per shard message."""
    from functions.rewrap import move_dependents, rewrap_page
    from shared.envelope import CachedKeyReads
    from tests.fakes.audit import FakeAuditTrail
    from tests.fakes.claims import FakeClaims
    from tests.fakes.clock import FakeClock
    from tests.fakes.outbound import FakeAlerts, FakeWorkQueue

    s = setup
    blobs = _make(s, 40)
    time.sleep(1.1)  # Key Vault's `created` has one-second resolution: the rotation comes in a later second
    s.admin.rotate_key(s.managed.ref)
    reads = CachedKeyReads(s.cloud.app_keyvault())  # a fresh process: nothing cached, no wrap client built
    clock, queue, claims, audit = FakeClock(), FakeWorkQueue(), FakeClaims(), FakeAuditTrail()
    before = s.cloud.emulators.counters()
    move_dependents(s.managed, trigger="test", vault=reads, dekstore=s.store, claims=claims, rewrap_queue=queue,
                    move_queue=FakeWorkQueue(), audit=audit, clock=clock, shardkeys=s.shardkeys)  # fmt: skip
    ports = {
        "inventory": _Inventory(s.managed), "vault": reads, "dekstore": s.store, "rewrap_queue": queue,
        "budget": _Unlimited(), "claims": claims, "audit": audit, "alerts": FakeAlerts(), "clock": clock,
        "sleep": lambda _s: None, "shardkeys": s.shardkeys,
    }  # fmt: skip
    outcomes = []
    while messages := queue.drain():
        outcomes += [rewrap_page(m, **ports) for m in messages]
    after = s.cloud.emulators.counters()
    assert sum(o.completed for o in outcomes) == 1
    assert _unwraps(after) - _unwraps(before) == SHARDS, (before, after)
    requests = _requests(after) - _requests(before)
    # Was 2 x SHARDS + 3: a current-version read per shard message. Now the reads are per process, not per shard:
    # the fan-out's current read, and the SDK's one key read per CryptographyClient (the wrap client's public key,
    # the unwrap client's first look at the old version).
    assert requests <= SHARDS + 3 and _by_op(before, after).get((_vault_of(after), "getkey"), 0) <= 3, _by_op(
        before, after
    )
    s.cache.clear()
    _opens_everywhere(s, blobs)


def _requests(counters: dict) -> int:
    """Key operations the Key Vault emulator answered 200 (reads and unwraps), over its vaults."""
    return sum(
        int(ops.get(op, {}).get("by_status", {}).get("200", 0))
        for ops in counters.values()
        if isinstance(ops, dict)
        for op in ops
    )


def _old_version(s, target) -> str:
    return next(v.version for v in s.admin.list_versions(s.managed.ref) if v.version != target.version)


def _unwraps(counters: dict) -> int:
    """unwrapKey operations the Key Vault emulator performed (answered 200), over its vaults. A 401 is the SDK's
    authentication challenge, once per new client: no key operation, so not counted against the vault's limit."""
    return sum(
        int(ops.get(op, {}).get("by_status", {}).get("200", 0))
        for ops in counters.values()
        if isinstance(ops, dict)
        for op in ops
        if "unwrap" in op.lower()
    )


def _by_op(before: dict, after: dict) -> dict:
    def flat(counters: dict) -> dict:
        return {
            (vault, op): int(c.get("by_status", {}).get("200", 0))
            for vault, ops in counters.items()
            if isinstance(ops, dict)
            for op, c in ops.items()
        }

    b, a = flat(before), flat(after)
    return {k: n - b.get(k, 0) for k, n in a.items() if n - b.get(k, 0)}


def _vault_of(counters: dict) -> str:
    return next(vault for vault, ops in counters.items() if isinstance(ops, dict) and "unwrapkey" in ops)
