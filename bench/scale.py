"""Status, revocation plans and retirement as the DEK registry grows, over the wire; and a rotation's Key Vault cost.

    .venv/bin/python bench/scale.py                      # 1,000, 10,000 and 100,000 DEKs
    .venv/bin/python bench/scale.py --deks 1000000       # ... and 1,000,000 (seeding takes a while)

It starts the local system (localrun.LocalSystem: Azurite, the emulators, the devhost serving function_app.py; free
ports, loopback only) with the reference inventory, and grows mysql-encryption-key's registry to 1k, 10k and N DEKs,
seeded straight into its dek-table shards through the DEK store's `add_many` (one entity-group transaction per 90
DEKs and their counter, four threads). Those DEKs are records only (random wrapped bytes under the key's current
version): nothing here opens them. At each size it measures the best and the median of `--repeat` calls (the ratios
use the best: on a shared machine the median follows the load on the other cores):
  - `GET /api/keys` over HTTP (every key's report and dependents: the counters, the quarantine, the consumers);
  - a dry-run revocation plan, `POST /api/revocations` (disable-key of the key, dry run) over HTTP;
  - a retirement decision's registry reads, in this process over the real adapter: the counters and the one
    bounded probe for a version nothing depends on (the key was rotated once before seeding, so its first version
    is that version; a probe that finds nothing is the probe's worst case).
and prints each ratio against 1k (acceptance: at most 1.5 for the first two at N).

Then `rotation_cost` rotates aks-encryption-key, holding `--rotation-deks` real DEKs (wrapped under its public key),
through POST /api/rotations and lets the devhost's own workers re-wrap them; it reports the wall time until the
counters show every DEK on the new version and the Key Vault requests the emulator counted meanwhile, by operation.
A flat key costs about one request per DEK. Then, in the same run, `bench/shard_keys.py`'s `rotation_costs()` rotates
two copies of the reference MySQL key holding N DEKs each, one flat and one with `hierarchy: shard-keys`, through the
app's own fan-out and re-wrap worker in this process over the fakes (real RSA-OAEP-256 and AES-GCM, every Key Vault
call counted by operation): flat against hierarchical Key Vault requests and wall time at N DEKs, and their ratios
(`--flat-sample M` re-wraps M flat DEKs and scales up, as a flat re-wrap is one unwrap per DEK: use it at 1,000,000).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from localrun.system import LocalSystem, Ports  # noqa: E402
from shared.envelope import count_by_version, key_check_value  # noqa: E402
from shared.envelope.sharding import shard_of  # noqa: E402
from shared.errors import Conflict, ServiceUnavailable  # noqa: E402
from shared.model import WrappedDek  # noqa: E402

FLAT = "mysql-encryption-key"
ROTATED = "aks-encryption-key"
SIZES = (1_000, 10_000)
BATCH = 90
SEED_THREADS = 4
NEVER = "0 0 0 1 1 *"  # the devhost's own sweep timer never fires while measuring
FAST_QUEUES = {"maxPollingInterval": "00:00:01", "visibilityTimeout": "00:00:05", "batchSize": 16, "maxDequeueCount": 5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deks", type=int, default=100_000, help="the largest registry measured (default 100,000)")
    parser.add_argument("--repeat", type=int, default=9, help="calls per measurement; best and median reported")
    parser.add_argument("--rotation-deks", type=int, default=1_000, help="real DEKs re-wrapped by the rotation")
    parser.add_argument(
        "--flat-sample", type=int, default=None, help="flat DEKs re-wrapped in the flat-vs-shard-keys rotation (scaled)"
    )
    args = parser.parse_args()
    if args.deks < SIZES[-1]:
        parser.error(f"--deks must be at least {SIZES[-1]}")
    bench = Scale(args)
    try:
        bench.up()
        summary = bench.run()
    finally:
        bench.down()
    print(json.dumps(summary, sort_keys=True))


class Scale:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.system: LocalSystem | None = None
        self.seeded = 0

    def up(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="cmk-scale-"))
        host = json.loads((ROOT / "host.json").read_text())
        host["extensions"]["queues"].update(FAST_QUEUES)
        (base / "host.json").write_text(json.dumps(host))
        self.system = LocalSystem(
            base / "run", ports=Ports.free(), extra_settings={"CMK_SWEEP_SCHEDULE": NEVER}, host_json=base / "host.json"
        )
        self.system.up()
        cloud = self.system.cloud
        self.inventory = cloud.inventory()
        self.vault = cloud.keyvault(cloud.identities.app)
        from shared.azure.dekstore import TableDekStore
        from shared.azure.tables import LazyTable, table_client

        table = self.system.app_settings().get("CMK_DEK_TABLE") or "cmkdeks"
        self.store = TableDekStore(LazyTable(table_client(table, connection_string=self.system.storage_connection)))

    def down(self) -> None:
        if self.system is not None:
            self.system.down()

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        assert self.system is not None
        headers = {"x-functions-key": self.system.devhost["function_key"]}
        return requests.request(method, f"{self.system.devhost['url']}{path}", headers=headers, timeout=300, **kwargs)

    # ---- the run ------------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        flat = self.inventory.key(FLAT)
        first = self.vault.get_key(flat.ref)
        self.vault.rotate_key(flat.ref)  # its first version now has no DEK: the retirement probe's worst case
        time.sleep(5)  # the rotation's fan-out (empty shards) settles before anything is timed
        current = self.vault.get_key(flat.ref)
        figures: dict[str, dict[str, float]] = {}
        for size in sorted({*SIZES, self.args.deks}):
            started = time.monotonic()
            self._seed_flat(flat, current, size)
            seed_s = time.monotonic() - started
            figures[str(size)] = self._measure(flat, first)
            figures[str(size)]["seed_s"] = round(seed_s, 1)
            print(f"{size:>9} DEKs: {json.dumps(figures[str(size)])}", file=sys.stderr, flush=True)
        base, top = figures[str(SIZES[0])], figures[str(self.args.deks)]
        names = ("keys_s", "plan_s", "retirement_s", "keys_median_s", "plan_median_s", "retirement_median_s")
        ratios = {name: round(top[name] / base[name], 2) for name in names}
        rotation = rotation_cost(self, self.args.rotation_deks)
        hierarchy = hierarchy_cost(self.args.deks, self.args.flat_sample)
        return {
            "bench": "scale",
            "deks": self.args.deks,
            "repeat": self.args.repeat,
            "figures": figures,
            "ratio_at_n_vs_1k": ratios,
            "acceptance_keys_and_plan_le_1_5": ratios["keys_s"] <= 1.5 and ratios["plan_s"] <= 1.5,
            "rotation": rotation,
            "rotation_flat_vs_shard_keys": hierarchy,
        }

    def _seed_flat(self, managed: Any, current: Any, size: int) -> None:
        """Grow the key's registry to `size` DEKs: a thread per shard, one transaction per BATCH DEKs."""
        prefix = next(c for c in managed.consumers if c.kind.value == "dek-table").options["partition_prefix"]
        by_shard: dict[str, list[WrappedDek]] = {}
        for i in range(self.seeded, size):
            dek_id = f"scale-{i:08d}"
            record = WrappedDek(
                shard_of(dek_id, prefix), dek_id, current.key_id, "RSA-OAEP-256", os.urandom(256), os.urandom(8).hex()
            )
            by_shard.setdefault(record.partition, []).append(record)

        with ThreadPoolExecutor(max_workers=SEED_THREADS) as pool:
            list(pool.map(lambda records: _add_all(self.store, records), by_shard.values()))
        self.seeded = size
        counted = sum(count_by_version(self.store.shard_counts(managed.ref)).values())
        if counted != size:
            raise RuntimeError(f"the counters say {counted} DEKs after seeding {size}")

    def _measure(self, managed: Any, first: Any) -> dict[str, float]:
        def keys() -> None:
            response = self.api("GET", "/api/keys")
            response.raise_for_status()
            [key] = [k for k in response.json()["keys"] if k["name"] == FLAT]
            if sum(key["dependents"]["deks_by_version"].values()) != self.seeded:
                raise RuntimeError("GET /api/keys counts the wrong number of DEKs")

        def plan() -> None:
            body = {"key": FLAT, "action": "disable-key", "reason": "bench: scale", "dry_run": True}
            response = self.api("POST", "/api/revocations", json=body)
            response.raise_for_status()
            if response.json()["plan"]["deks_unreadable"] != self.seeded:
                raise RuntimeError(f"the plan counts the wrong number of DEKs: {response.text[:300]}")

        def retirement() -> None:
            counts = count_by_version(self.store.shard_counts(managed.ref))
            if counts.get(first.key_id.lower(), 0) or self.store.probe(first.key_id):
                raise RuntimeError("a DEK was found on the version nothing depends on")

        keys(), plan(), retirement()  # warm: the first call of each pays for imports and connections
        out: dict[str, float] = {}
        for name, call in (("keys_s", keys), ("plan_s", plan), ("retirement_s", retirement)):
            out[name], out[name.replace("_s", "_median_s")] = _timed(call, self.args.repeat)
        return out


def hierarchy_cost(deks: int, flat_sample: int | None) -> dict[str, Any]:
    """A KEK rotation at `deks` DEKs, flat against shard keys, in this run (bench/shard_keys.rotation_costs): the Key
    Vault requests and wall time of each, and their ratios; one line each on stderr."""
    from bench.shard_keys import rotation_costs

    summary = rotation_costs(deks=deks, flat_sample=flat_sample)
    for name in ("flat", "shard_keys"):
        s = summary[name]
        print(f"rotation at {deks} DEKs, {name:10}: kv_requests={s['kv_requests']} unwraps={s['kv_unwraps']} "
              f"seconds={s['seconds']} budget_seconds={s['budget_seconds']}", file=sys.stderr, flush=True)  # fmt: skip
    return summary


def rotation_cost(bench: Scale, deks: int) -> dict[str, Any]:
    """A rotation of a flat key holding `deks` real DEKs over the wire, re-wrapped by the devhost's own workers: wall
    time until the counters show every DEK on the new version, and the Key Vault requests counted meanwhile (the
    hierarchical case beside it, at N DEKs, is `hierarchy_cost`)."""
    managed = bench.inventory.key(ROTATED)
    prefix = next(c for c in managed.consumers if c.kind.value == "dek-table").options["partition_prefix"]
    current = bench.vault.get_key(managed.ref)
    by_shard: dict[str, list[WrappedDek]] = {}
    for i in range(deks):
        secret, dek_id = os.urandom(32), f"rot-{i:07d}"
        wrapped = bench.vault.wrap_key(managed.ref, current.version, secret)  # local, with the public key
        record = WrappedDek(
            shard_of(dek_id, prefix),
            dek_id,
            wrapped.key_id,
            wrapped.algorithm,
            wrapped.wrapped,
            key_check_value(secret),
        )
        by_shard.setdefault(record.partition, []).append(record)
    for records in by_shard.values():
        _add_all(bench.store, records)
    cloud = bench.system.cloud  # type: ignore[union-attr]
    cloud.admin("DELETE", "/counters")
    started = time.monotonic()
    answer = bench.api("POST", "/api/rotations", json={"key": ROTATED, "reason": "bench: rotation cost"})
    answer.raise_for_status()
    target = bench.vault.get_key(managed.ref)
    deadline = started + max(300.0, deks * 0.1)
    on_target = 0
    while time.monotonic() < deadline:
        counts = count_by_version(bench.store.shard_counts(managed.ref))
        on_target = counts.get(target.key_id.lower(), 0)
        if on_target >= deks:
            break
        time.sleep(0.5)
    wall = time.monotonic() - started
    by_op: dict[str, int] = {}
    for ops in cloud.admin("GET", "/counters").values():
        for op, c in ops.items():
            by_op[op] = by_op.get(op, 0) + c["requests"]
    calls = sum(by_op.values())
    return {
        "flat": {
            "deks": deks,
            "moved": on_target,
            "wall_s": round(wall, 1),
            "keyvault_requests": calls,
            "requests_per_dek": round(calls / deks, 3) if deks else None,
            "by_operation": dict(sorted(by_op.items())),
        }
    }


def _add_all(store: Any, records: list[WrappedDek]) -> None:
    """`records` (one shard's) in transactions of BATCH; one that failed on the way (Azurite resets a connection now
    and then under load) is sent again, and a Conflict then means its first try landed (a batch is all or none)."""
    for n in range(0, len(records), BATCH):
        for attempt in range(5):
            try:
                store.add_many(records[n : n + BATCH])
                break
            except Conflict:
                break
            except ServiceUnavailable:
                if attempt == 4:
                    raise
                time.sleep(1 + attempt)


def _timed(call, repeat: int) -> tuple[float, float]:
    """(best, median) of `repeat` calls. The ratios use the best: on a shared machine the median moves with the
    load on the other cores, the best is what the call costs when nothing else is in its way."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return round(min(samples), 4), round(statistics.median(samples), 4)


if __name__ == "__main__":
    main()
