"""A KEK rotation's cost, flat against shard keys, in one run: Key Vault calls, wall time, and the time the vault's
re-wrap budget alone would impose.

    .venv/bin/python bench/shard_keys.py                      # 100,000 DEKs per key, 16 shards
    .venv/bin/python bench/shard_keys.py --deks 1000000 --flat-sample 100000

Two copies of the reference MySQL key, one flat and one with `hierarchy: shard-keys`, each get N DEKs in the same
16 shards. Each key is rotated and its re-wrap runs to the end through the app's own handlers, as the queue worker
runs them: the fan-out's messages (one per shard) drained through `functions.rewrap.worker.rewrap_page` until none
is left, with a budget that grants everything (the vault limit is reported separately, below). The vault and the
tables are the in-memory fakes (real RSA-OAEP-256 and AES-GCM, in this process), wrapped to count every call by
operation, under the per-process cache of versioned key reads that shared.bootstrap puts around the real adapter; so
`seconds` is the handlers' own work (crypto, paging, bookkeeping) without network latency, while `kv_requests` is
exactly what Azure would bill and throttle: unwrapKey and key reads (wrapKey runs locally). With shard keys that is
one unwrapKey per shard plus the fan-out's one read of the current version (issue 21: shards + 1).

`budget_seconds` is the floor the shared re-wrap budget puts under the same crypto operations on an RSA-2048 HSM
vault (functions.rewrap.worker: 2,000 operations per 10 s, half for the re-wrap, W/(W+1) of that usable).

With `--flat-sample S` (< N) the flat key gets only S DEKs and its figures are scaled by N/S (a flat re-wrap is
linear: one unwrap per DEK; marked `extrapolated_from`); the shard-keys key always gets all N, and its DEK rows read
and written during the rotation are counted (both must be 0). The last line printed is one JSON object;
`rotation_costs()` returns it, for bench/scale.py to call.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from functions.rewrap import BUDGET_WINDOW, move_dependents, rewrap_page, window_limit  # noqa: E402
from shared.coordination.budget import BudgetGrant  # noqa: E402
from shared.envelope import CachedKeyReads, ShardKeyCache, create_sharded_dek, key_check_value  # noqa: E402
from shared.envelope.sharding import shard_of  # noqa: E402
from shared.inventory import load_inventory  # noqa: E402
from shared.model import WrappedDek  # noqa: E402
from tests.fakes.audit import FakeAuditTrail  # noqa: E402
from tests.fakes.claims import FakeClaims  # noqa: E402
from tests.fakes.clock import FakeClock  # noqa: E402
from tests.fakes.dekstore import FakeDekStore  # noqa: E402
from tests.fakes.keyvault import FakeKeyVault  # noqa: E402
from tests.fakes.outbound import FakeAlerts, FakeWorkQueue  # noqa: E402
from tests.fakes.shardkeys import FakeShardKeyStore  # noqa: E402

SHARDS = 16
REQUESTS = ("unwrap_key", "get_key", "list_versions")  # what reaches Key Vault (wrap_key is local in the adapter)


class CountingVault:
    """The fake vault, counting calls per operation."""

    def __init__(self, inner: FakeKeyVault) -> None:
        self.inner, self.calls = inner, Counter()

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


class CountingStore:
    def __init__(self, inner: FakeDekStore) -> None:
        self.inner, self.read, self.written = inner, 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def list_page(self, *args, **kwargs):
        page = self.inner.list_page(*args, **kwargs)
        self.read += len(page.items)
        return page

    def replace(self, dek):
        self.written += 1
        return self.inner.replace(dek)

    def replace_many(self, changes):
        # The re-wrap writes a grant's DEKs (and their shard's counter) in one transaction: each DEK is a row written.
        self.written += len(changes)
        return self.inner.replace_many(changes)


class Unlimited:
    def reserve(self, scope, want, *, now, limit_per_window, window):
        return BudgetGrant(want)


class Inventory:
    def __init__(self, keys) -> None:
        self.keys = tuple(keys)

    def key(self, name: str):
        return next(k for k in self.keys if k.name == name)


def _keys(shards: int):
    reference = load_inventory(ROOT / "inventory/reference.yaml", {}).key("mysql-encryption-key")
    made = []
    for name, hierarchy in (("bench-flat", "flat"), ("bench-sharded", "shard-keys")):
        table = next(c for c in reference.consumers if c.kind.value == "dek-table")
        options = {**table.options, "partition_prefix": f"{name}-", "shards": shards, "hierarchy": hierarchy}
        made.append(dataclasses.replace(reference, name=name, consumers=(dataclasses.replace(table, options=options),)))
    return made


def _seed_flat(managed, vault, store, count: int, shards: int) -> None:
    current = vault.get_key(managed.ref)
    for i in range(count):
        dek = os.urandom(32)
        dek_id = f"f{i:07d}"
        wrapped = vault.wrap_key(managed.ref, current.version, dek)
        store.add(WrappedDek(shard_of(dek_id, f"{managed.name}-", shards), dek_id, wrapped.key_id, wrapped.algorithm,
                             wrapped.wrapped, key_check_value(dek)))  # fmt: skip


def _seed_sharded(managed, vault, store, shardkeys, count: int) -> None:
    cache = ShardKeyCache(3600)
    current = vault.get_key(managed.ref)
    for i in range(count):
        create_sharded_dek(managed, vault=vault, store=store, shardkeys=shardkeys, cache=cache, dek_id=f"s{i:07d}",
                           current=current).close()  # fmt: skip


def _rotate(managed, inventory, vault: CountingVault, store, shardkeys) -> dict:
    clock, queue, audit = FakeClock(), FakeWorkQueue(), FakeAuditTrail()
    vault.inner.clock.advance(timedelta(days=1))  # a rotation comes after the version it replaces was created
    vault.inner.rotate_key(managed.ref)
    counting = CountingStore(store)
    vault.calls.clear()
    started = time.perf_counter()
    claims = FakeClaims()
    reads = CachedKeyReads(vault)  # one process's vault port, as shared.bootstrap builds it (counted underneath)
    move_dependents(managed, trigger="bench", vault=reads, dekstore=counting, claims=claims, rewrap_queue=queue,
                    move_queue=FakeWorkQueue(), audit=audit, clock=clock, shardkeys=shardkeys)  # fmt: skip
    ports = {
        "inventory": inventory, "vault": reads, "dekstore": counting, "rewrap_queue": queue, "budget": Unlimited(),
        "claims": claims, "audit": audit, "alerts": FakeAlerts(), "clock": clock, "sleep": lambda s: None,
        "shardkeys": shardkeys,
    }  # fmt: skip
    pages = completed = 0
    while messages := queue.drain():
        for message in messages:
            outcome = rewrap_page(message, **ports)
            pages += 1
            completed += outcome.completed
    seconds = time.perf_counter() - started
    crypto = vault.calls["unwrap_key"]
    per_second = window_limit() / BUDGET_WINDOW.total_seconds()  # the worker's own budget arithmetic
    return {
        "kv_requests": sum(vault.calls[op] for op in REQUESTS),
        "kv_unwraps": crypto,
        "kv_calls_by_op": dict(sorted(vault.calls.items())),
        "seconds": round(seconds, 3),
        "budget_seconds": round(crypto / per_second, 1),
        "dek_rows_read": counting.read,
        "dek_rows_written": counting.written,
        "messages": pages,
        "completed": completed == 1,
    }


def rotation_costs(deks: int = 100_000, shards: int = SHARDS, flat_sample: int | None = None) -> dict:
    """One run: the flat key's rotation and the shard-keys key's, side by side; their ratios."""
    flat_key, sharded_key = _keys(shards)
    inventory = Inventory([flat_key, sharded_key])
    vault = CountingVault(FakeKeyVault())
    for managed in (flat_key, sharded_key):
        vault.inner.create_key(managed.ref, kty="RSA-HSM", size=2048, ops=("wrapKey", "unwrapKey"))
    flat_deks = min(deks, flat_sample) if flat_sample else deks
    store, shardkeys = FakeDekStore(), FakeShardKeyStore()
    started = time.perf_counter()
    _seed_flat(flat_key, vault.inner, store, flat_deks, shards)
    _seed_sharded(sharded_key, vault.inner, store, shardkeys, deks)
    seeded = time.perf_counter() - started
    flat = _rotate(flat_key, inventory, vault, store, shardkeys)
    sharded = _rotate(sharded_key, inventory, vault, store, shardkeys)
    if flat_deks < deks:
        scale = deks / flat_deks
        for field in ("kv_requests", "kv_unwraps", "dek_rows_read", "dek_rows_written"):
            flat[field] = round(flat[field] * scale)
        for field in ("seconds", "budget_seconds"):
            flat[field] = round(flat[field] * scale, 1)
        flat["extrapolated_from"] = flat_deks
    return {
        "bench": "shard_keys",
        "deks": deks,
        "shards": shards,
        "seed_seconds": round(seeded, 1),
        "flat": flat,
        "shard_keys": sharded,
        "kv_requests_ratio": round(sharded["kv_requests"] / max(1, flat["kv_requests"]), 6),
        "seconds_ratio": round(sharded["seconds"] / max(1e-9, flat["seconds"]), 6),
        "unwraps_per_shard": round(sharded["kv_unwraps"] / shards, 3),
        "acceptance_unwraps_at_most_shards": sharded["kv_unwraps"] <= shards,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deks", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=SHARDS)
    parser.add_argument("--flat-sample", type=int, default=None, help="seed the flat key with this many, scale up")
    args = parser.parse_args(argv)
    if not 1 <= args.deks <= 2_000_000 or not 1 <= args.shards <= 1000:
        parser.error("--deks must be from 1 to 2,000,000 and --shards from 1 to 1000")
    summary = rotation_costs(args.deks, args.shards, args.flat_sample)
    for name in ("flat", "shard_keys"):
        s = summary[name]
        print(f"{name:10} kv_requests={s['kv_requests']:>9} unwraps={s['kv_unwraps']:>9} seconds={s['seconds']:>9} "
              f"budget_seconds={s['budget_seconds']:>8} dek_rows_read={s['dek_rows_read']} "
              f"written={s['dek_rows_written']}", file=sys.stderr)  # fmt: skip
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["acceptance_unwraps_at_most_shards"] else 1


if __name__ == "__main__":
    sys.exit(main())
