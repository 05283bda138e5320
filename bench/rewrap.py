"""The re-wrap after a rotation, over Azurite and the emulators, while the consumers keep unwrapping on the same vault.

    .venv/bin/python bench/rewrap.py --deks 10000 --latency-ms 20 --throttle hsm-rsa2048 --budget 0.5 \
        --production-load 0.3 --workers 4

It starts Azurite and the emulators itself (loopback only, free ports), seeds the reference inventory's MySQL key
and N DEKs in its dek-table shards, rotates the key, and re-wraps with W worker processes running the app's
`rewrap_page` over the real adapters: the budget they share lives in Table Storage, as in production. Meanwhile a
load generator unwraps as the consumers' identities (MySQL's and AKS's, each with its key's role) at
`production-load` x the vault's limit (RSA-2048 HSM: 2,000 operations per 10 s), paced. Every Key Vault call gets
`--latency-ms`; `--throttle hsm-rsa2048` turns on the emulator's real per-vault limits.

Why these figures: the re-wrap must use its share of the vault (budget_use_pct near 100) without ever taking more
(peak_window_pct <= 100) or pushing the consumers into 429s (production_429s = 0), and spend one Key Vault request
per DEK (the wrap is local). The naive baseline (sequential remote unwrap, remote wrap, one entity update each, no
budget) runs in this process on a fixed sample of the same DEKs afterwards, without the load generator; rates are
compared (ratio_vs_naive > 1 is faster). The last line printed is one JSON object.

The budget share is set in each worker process through `functions.rewrap.worker`'s module constants
(HSM_OPS_PER_WINDOW, BUDGET_SHARE), which `rewrap_page` reads on every call.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import random
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from azure.core.exceptions import AzureError, HttpResponseError  # noqa: E402
from azure.core.pipeline.policies import RetryPolicy, SansIOHTTPPolicy  # noqa: E402
from azure.data.tables import TableClient, UpdateMode  # noqa: E402

import functions.rewrap.worker as rewrap_worker  # noqa: E402
from emulators.credential import EmulatorCredential  # noqa: E402
from shared import roles  # noqa: E402
from shared.azure.access import AzureAccessControl  # noqa: E402
from shared.azure.dekstore import from_entity, to_entity  # noqa: E402
from shared.azure.keyvault import AzureKeyVault  # noqa: E402
from shared.envelope.deks import key_check_value  # noqa: E402
from shared.envelope.sharding import all_shards, shard_count, shard_of  # noqa: E402
from shared.inventory import parse_inventory  # noqa: E402
from shared.model import WrappedDek  # noqa: E402

HSM_RSA2048_OPS_PER_WINDOW = 2000  # Key Vault's limit for RSA-2048 HSM key operations, per vault
WINDOW_SECONDS = 10.0
BATCH = 100  # entities per Table transaction when seeding (the service's maximum)
LOAD_THREADS = 8
VERIFY_OPEN_SAMPLE = 500
NAIVE_SAMPLE = 300
WORKER_IDLE_POLL_SECONDS = 0.05
CONCURRENCY = 4  # pages in flight per worker process (a Functions instance runs up to batchSize=16)
KEY_NAME = "mysql-encryption-key"


class CountingPolicy(SansIOHTTPPolicy):
    """Counts every HTTP request a client sends (retries included) and the 429 answers it gets."""

    def __init__(self) -> None:
        self.requests = 0
        self.throttled = 0
        self._lock = threading.Lock()

    def on_request(self, request: Any) -> None:
        with self._lock:
            self.requests += 1

    def on_response(self, request: Any, response: Any) -> None:
        if response.http_response.status_code == 429:
            with self._lock:
                self.throttled += 1


class TimedVault:
    """The worker's KeyVault port with the time of each call that reaches the vault (unwrap, key read) recorded, so
    the re-wrap's rate per 10 s can be measured across all workers; everything else is delegated unchanged."""

    def __init__(self, inner: AzureKeyVault) -> None:
        self._inner = inner
        self.times: list[float] = []

    def unwrap_key(self, *args: Any, **kwargs: Any) -> bytes:
        self.times.append(time.time())
        return self._inner.unwrap_key(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CollectedAlerts:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def publish(self, alert: Any) -> None:
        self.sent.append(alert)


# ---- worker process ---------------------------------------------------------------------------------------------
def worker(config_path: str) -> int:
    """Drain the re-wrap queue the way the Functions host runs the trigger (delete only after the page succeeded)
    until the stop file appears; print one JSON line per page and a final one with this process's counts."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    from shared.azure.audit import TableAuditTrail
    from shared.azure.budget import TableRewrapBudget
    from shared.azure.claims import TableClaims
    from shared.azure.dekstore import TableDekStore
    from shared.azure.queue import StorageWorkQueue
    from shared.azure.tables import LazyTable
    from shared.clock import SystemClock

    config = json.loads(Path(config_path).read_text())
    rewrap_worker.HSM_OPS_PER_WINDOW = config["ops_per_window"]
    rewrap_worker.BUDGET_SHARE = config["budget_share"]
    if config.get("budget_window_s"):  # an experiment on the pacing's granularity (the worker scales its limit)
        rewrap_worker.BUDGET_WINDOW = timedelta(seconds=config["budget_window_s"])
    if config.get("page_size"):
        rewrap_worker.PAGE_SIZE = config["page_size"]
    connection = config["connection"]
    tables = CountingPolicy()

    def table(name: str) -> LazyTable:
        return LazyTable(TableClient.from_connection_string(connection, table_name=name, per_retry_policies=[tables]))

    vault = TimedVault(
        AzureKeyVault(
            EmulatorCredential(config["principal"], config["tenant"]),
            connection_verify=config["ca"],
            verify_challenge_resource=False,
        )
    )
    alerts = CollectedAlerts()
    ports = {
        "inventory": parse_inventory(config["inventory"], variables=config["variables"]),
        "vault": vault,
        "dekstore": TableDekStore(table(config["tables"]["deks"])),
        "rewrap_queue": StorageWorkQueue(connection, config["queue"]),
        "budget": TableRewrapBudget(table(config["tables"]["budget"])),
        "claims": TableClaims(table(config["tables"]["claims"])),
        "audit": TableAuditTrail(table(config["tables"]["audit"])),
        "alerts": alerts,
        "clock": SystemClock(),
        "sleep": time.sleep,
    }
    queue = QueueClient.from_connection_string(
        connection,
        config["queue"],
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    stop, deadline = Path(config["stop_file"]), time.monotonic() + config["max_seconds"]
    errors: list[str] = []
    printing = threading.Lock()

    def emit(line: dict) -> None:
        with printing:
            print(json.dumps(line), flush=True)

    def drain() -> None:
        while not stop.exists() and time.monotonic() < deadline:
            messages = list(queue.receive_messages(max_messages=1, visibility_timeout=60))
            if not messages:
                time.sleep(WORKER_IDLE_POLL_SECONDS)
                continue
            for message in messages:
                try:
                    outcome = rewrap_worker.rewrap_page(json.loads(message.content), **ports)
                except rewrap_worker.WholePageFailed:
                    continue  # back on the queue after its visibility timeout
                except Exception as exc:  # counted; the message comes back, as on the host
                    errors.append(type(exc).__name__)
                    emit({"error": type(exc).__name__})
                    continue
                try:
                    queue.delete_message(message)
                except HttpResponseError as exc:  # it outlasted its visibility timeout: redelivered, idempotent
                    if exc.error_code not in ("PopReceiptMismatch", "MessageNotFound"):
                        raise
                emit({"page": outcome.to_json(), "at": time.time()})

    # Like one Functions instance, which runs up to host.json's batchSize messages at once: `concurrency` pages.
    threads = [threading.Thread(target=drain, daemon=True) for _ in range(config["concurrency"])]
    print("ready", flush=True)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        final = {"final": True, "table_ops": tables.requests, "kv_times": vault.times, "errors": len(errors)}
        final["alerts"] = [a.type for a in alerts.sent]
        emit(final)
    return 0


# ---- the run ------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deks", type=int, default=10000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--throttle", choices=("hsm-rsa2048", "off"), default="hsm-rsa2048")
    parser.add_argument("--budget", type=float, default=0.5)
    parser.add_argument("--production-load", type=float, default=0.3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="pages at once per worker process")
    parser.add_argument("--budget-window-s", type=float, help="experiment: the budget's window (default: the worker's)")
    parser.add_argument("--page-size", type=int, help="experiment: DEKs per page, so per grant (default: the worker's)")
    parser.add_argument("--naive-sample", type=int, default=NAIVE_SAMPLE)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.exit(worker(args.worker))
    for name in ("deks", "workers", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be at least 1")
    if not 0 < args.budget <= 1:
        parser.error("--budget: must be a share of the vault's limit, above 0 and at most 1")
    if not 0 <= args.production_load <= 1:
        parser.error("--production-load: must be a share of the vault's limit, from 0 to 1")
    from tests.support.azurite import start_azurite
    from tests.support.emulators import start_emulators

    with tempfile.TemporaryDirectory(prefix="bench-rewrap-") as tmp:
        azurite = emulators = None
        workers: list[subprocess.Popen] = []
        try:
            azurite = start_azurite(Path(tmp) / "azurite")
            emulators = start_emulators(Path(tmp) / "emulators")
            summary = Run(args, Path(tmp), azurite, emulators, workers).execute()
        finally:
            (Path(tmp) / "stop").touch()
            for proc in workers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(15)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
            if emulators is not None:
                emulators.stop()
            if azurite is not None:
                azurite.stop()
    print(json.dumps(summary))


class Run:
    def __init__(self, args: argparse.Namespace, tmp: Path, azurite: Any, emulators: Any, workers: list) -> None:
        self.args, self.tmp, self.azurite, self.emu, self.workers = args, tmp, azurite, emulators, workers
        self.connection = azurite.connection_string
        self.app = str(uuid.uuid4())
        self.aks, self.mysql = str(uuid.uuid4()), str(uuid.uuid4())
        self.limit = int(HSM_RSA2048_OPS_PER_WINDOW * args.budget)
        suffix = uuid.uuid4().hex[:8]
        self.tables = {name: f"{name}{suffix}" for name in ("deks", "claims", "audit", "budget")}
        self.queue = f"rewrap{suffix}"

    def execute(self) -> dict[str, Any]:
        emu = self.emu
        emu.set_throttle(mode="real" if self.args.throttle == "hsm-rsa2048" else "off")
        inventory, document, variables = self._inventory()
        vault = AzureKeyVault(
            EmulatorCredential(self.app, emu.tenant_id), connection_verify=emu.ca_cert, verify_challenge_resource=False
        )
        self.vault = vault
        access = AzureAccessControl(
            EmulatorCredential(self.app, emu.tenant_id),
            emu.subscription_id,
            base_url=emu.arm_url,
            connection_verify=emu.ca_cert,
        )
        sub = emu.subscription_id
        access.create_assignment(
            emu.vault_resource_id(), roles.role_definition_id(sub, roles.CRYPTO_OFFICER), self.app, "ServicePrincipal"
        )
        production = []
        for key in inventory.keys:
            vault.create_key(key.ref, kty=key.kty, size=key.size, ops=key.ops)
            access.create_assignment(
                key.scope,
                roles.role_definition_id(sub, roles.CRYPTO_SERVICE_ENCRYPTION_USER),
                key.identity.principal_id,
                "ServicePrincipal",
            )
            production.append((key, key.identity.principal_id))
        managed = inventory.key(KEY_NAME)
        options = next(c for c in managed.consumers if c.kind.value == "dek-table").options
        prefix, shards = options["partition_prefix"], shard_count(options)

        seed_started = time.perf_counter()
        old = vault.get_key(managed.ref)
        kept = self._seed(managed, old.version, prefix, shards)
        seed_seconds = time.perf_counter() - seed_started
        new = vault.rotate_key(managed.ref)
        load_targets = []
        for key, principal in production:
            current = vault.get_key(key.ref)
            wrapped = vault.wrap_key(key.ref, current.version, os.urandom(32))
            load_targets.append((current.key_id, wrapped.wrapped, principal))

        from azure.storage.queue import QueueClient

        with QueueClient.from_connection_string(self.connection, self.queue) as queue_admin:
            queue_admin.create_queue()
        self._start_workers(document, variables)
        emu.set_latency(self.args.latency_ms)
        load = LoadGenerator(emu, load_targets, self.args.production_load * HSM_RSA2048_OPS_PER_WINDOW / WINDOW_SECONDS)
        load.warm()  # its clients' challenge and key reads happen before the measured part
        before = _vault_requests(emu.counters())
        load.start()
        from functions.rewrap.messages import RewrapMessage
        from shared.azure.queue import StorageWorkQueue
        from shared.clock import SystemClock

        queue = StorageWorkQueue(self.connection, self.queue)
        started = time.time()
        for partition in all_shards(prefix, shards):
            queue.send(RewrapMessage(managed.name, new.key_id, partition, started_at=SystemClock().now()).to_json())
        done_at = self._wait_done(len(kept), started)
        load.stop()
        after = _vault_requests(emu.counters())
        (self.tmp / "stop").touch()
        finals = self._collect_finals()
        pages = [line["page"] for lines in self.lines for line in lines if "page" in line]
        seconds = done_at - started
        kv_times = sorted(t for f in finals for t in f["kv_times"])
        rewrap_requests = after - before - load.requests
        naive = self._naive(kept, new, managed)
        verified = self._verify(kept, new.key_id)
        deks = len(kept)
        steady, peak_sliding, peak_aligned = _window_figures(kv_times, started, done_at, self.limit)
        rate = deks / seconds
        return {
            "bench": "rewrap",
            "deks": deks,
            "workers": self.args.workers,
            "pages_in_flight_per_worker": self.args.concurrency,
            "worker_pacing": {
                "budget_window_s": self.args.budget_window_s or rewrap_worker.BUDGET_WINDOW.total_seconds(),
                "page_size": self.args.page_size or rewrap_worker.PAGE_SIZE,
            },
            "latency_ms": self.args.latency_ms,
            "throttle": self.args.throttle,
            "budget_share": self.args.budget,
            "budget_ops_per_10s": self.limit,
            "production_load": self.args.production_load,
            "seconds": round(seconds, 2),
            "deks_per_s": round(rate, 1),
            "kv_tx_per_dek": round(rewrap_requests / deks, 3),
            "budget_use_pct": steady,
            "peak_window_pct": peak_sliding,
            "peak_aligned_window_pct": peak_aligned,
            "production_429s": load.throttled,
            "production_unwraps": load.calls,
            "production_ops_per_s": round(load.calls / seconds, 1),
            "table_ops_per_dek": round(sum(f["table_ops"] for f in finals) / deks, 2),
            "pages": len(pages),
            "deferred_deks": sum(p["deferred"] for p in pages),  # granted nothing yet: re-enqueued by id
            "rewrap_calls_per_window": _per_window(kv_times),
            "worker_errors": sum(f["errors"] for f in finals),
            "ratio_vs_naive": round(rate / naive["deks_per_s"], 2),
            "naive": naive,
            "naive_sample": naive["sample"] < deks,
            "verified": verified,
            "seed_seconds": round(seed_seconds, 1),
        }

    def _inventory(self) -> tuple[Any, dict, dict]:
        document = yaml.safe_load((ROOT / "inventory/reference.yaml").read_text())
        vault_id = self.emu.vault_resource_id()
        _, sub, _, group, *_, vault_name = vault_id.strip("/").split("/")
        variables = {
            "CMK_VAULT_NAME": vault_name,
            "CMK_VAULT_URL": self.emu.vault_url(),
            "CMK_SUBSCRIPTION_ID": sub,
            "CMK_RESOURCE_GROUP": group,
            "AKS_IDENTITY_PRINCIPAL_ID": self.aks,
            "MYSQL_IDENTITY_PRINCIPAL_ID": self.mysql,
            "CMK_APP_PRINCIPAL_ID": self.app,
            "CMK_DEK_TABLE": self.tables["deks"],
        }
        return parse_inventory(document, variables=variables), document, variables

    def _table(self, name: str) -> TableClient:
        return TableClient.from_connection_string(self.connection, table_name=self.tables[name])

    def _seed(self, managed: Any, version: str, prefix: str, shards: int) -> dict[tuple[str, str], bytes]:
        """N DEKs wrapped locally under `version`, written in Table transactions of 100 per partition (fast, and
        the same entities the adapter writes)."""
        client = self._table("deks")
        client.create_table()
        kept: dict[tuple[str, str], bytes] = {}
        by_partition: dict[str, list[dict]] = defaultdict(list)
        for i in range(self.args.deks):
            dek, dek_id = os.urandom(32), f"dek-{i:06d}"
            partition = shard_of(dek_id, prefix, shards)
            wrapped = self.vault.wrap_key(managed.ref, version, dek)
            record = WrappedDek(
                partition, dek_id, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, key_check_value(dek)
            )
            by_partition[partition].append(to_entity(record))
            kept[(partition, dek_id)] = dek
        for entities in by_partition.values():
            for i in range(0, len(entities), BATCH):
                client.submit_transaction([("create", e) for e in entities[i : i + BATCH]])
        return kept

    def _start_workers(self, document: dict, variables: dict) -> None:
        config = self.tmp / "worker.json"
        config.write_text(
            json.dumps(
                {
                    "connection": self.connection,
                    "queue": self.queue,
                    "tables": self.tables,
                    "ca": self.emu.ca_cert,
                    "tenant": self.emu.tenant_id,
                    "principal": self.app,
                    "inventory": document,
                    "variables": variables,
                    "ops_per_window": HSM_RSA2048_OPS_PER_WINDOW,
                    "budget_share": self.args.budget,
                    "stop_file": str(self.tmp / "stop"),
                    "concurrency": self.args.concurrency,
                    "budget_window_s": self.args.budget_window_s,
                    "page_size": self.args.page_size,
                    "max_seconds": self._max_seconds(),
                }
            )
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.lines: list[list[dict]] = []
        for n in range(self.args.workers):
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker", str(config)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=(self.tmp / f"worker{n}.log").open("wb"),
                text=True,
            )
            self.workers.append(proc)
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"worker {n} did not start: {(self.tmp / f'worker{n}.log').read_text()[-2000:]}")
            lines: list[dict] = []
            self.lines.append(lines)
            threading.Thread(target=_read_lines, args=(proc, lines), daemon=True).start()

    def _max_seconds(self) -> float:
        budget_seconds = self.args.deks / (self.limit / WINDOW_SECONDS)
        return 120 + 4 * budget_seconds

    def _wait_done(self, deks: int, started: float) -> float:
        """The time the last DEK moved (a page said the key's re-wrap completed, or every DEK was moved)."""
        deadline = time.monotonic() + self._max_seconds()
        while time.monotonic() < deadline:
            pages = [line for lines in self.lines for line in list(lines) if "page" in line]
            moved = sum(p["page"]["succeeded"] for p in pages)
            if moved >= deks or any(p["page"]["completed"] for p in pages):
                return max(p["at"] for p in pages)
            if any(proc.poll() is not None for proc in self.workers):
                logs = "".join((self.tmp / f"worker{n}.log").read_text()[-3000:] for n in range(len(self.workers)))
                raise RuntimeError(f"a worker ended before the re-wrap was done: {logs}")
            time.sleep(0.2)
        raise RuntimeError(f"the re-wrap did not finish within {self._max_seconds():.0f} s")

    def _collect_finals(self) -> list[dict]:
        finals = []
        for proc, lines in zip(self.workers, self.lines, strict=True):
            proc.wait(30)
            for _ in range(50):  # the reader thread may still be handing over the last line
                found = [line for line in list(lines) if line.get("final")]
                if found:
                    finals.append(found[0])
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("a worker ended without its counts")
        return finals

    def _naive(self, kept: dict, new: Any, managed: Any) -> dict[str, Any]:
        """The baseline: for each DEK of a fixed sample, a remote unwrap, a remote wrap and one entity update, one
        after the other, no budget; on DEKs already on the new version, re-wrapped to it again (same cost)."""
        sample = sorted(kept)[:: max(1, len(kept) // self.args.naive_sample)][: self.args.naive_sample]
        raw = RawVault(self.emu.vault_url(), EmulatorCredential(self.app, self.emu.tenant_id), self.emu.ca_cert)
        client = self._table("deks")
        path = f"/keys/{managed.name}/{new.version}"
        started = time.perf_counter()
        for partition, dek_id in sample:
            dek = from_entity(client.get_entity(partition, dek_id))
            version_path = "/" + dek.key_id.split("/", 3)[3]
            plain = _unb64(raw.post(f"{version_path}/unwrapkey", {"alg": dek.algorithm, "value": _b64(dek.wrapped)}))
            wrapped = _unb64(raw.post(f"{path}/wrapkey", {"alg": "RSA-OAEP-256", "value": _b64(plain)}))
            moved = WrappedDek(partition, dek_id, new.key_id, "RSA-OAEP-256", wrapped, dek.kcv)
            client.update_entity(to_entity(moved), mode=UpdateMode.REPLACE)
        seconds = time.perf_counter() - started
        raw.close()
        return {"sample": len(sample), "seconds": round(seconds, 2), "deks_per_s": round(len(sample) / seconds, 1)}

    def _verify(self, kept: dict, target: str) -> dict[str, Any]:
        """Every DEK's entity is on the new version; a fixed sample (all when N is small) opens by remote unwrap to
        the plaintext this run kept, and matches its KCV."""
        client = self._table("deks")
        entities = {(e["PartitionKey"], e["RowKey"]): from_entity(e) for e in client.list_entities()}
        on_new = sum(1 for k in kept if k in entities and entities[k].key_id == target)
        keys = sorted(kept)
        sample = keys if len(keys) <= VERIFY_OPEN_SAMPLE else random.Random(9).sample(keys, VERIFY_OPEN_SAMPLE)
        opened = 0
        for key in sample:
            dek = entities[key]
            plain = self.vault.unwrap_key(dek.key_id, dek.wrapped, dek.algorithm)
            opened += plain == kept[key] and key_check_value(plain) == dek.kcv
        return {
            "on_new_version": on_new,
            "of": len(kept),
            "opened": opened,
            "open_checked": len(sample),
            "open_sampled": len(sample) < len(kept),
        }


class LoadGenerator:
    """The consumers' own unwraps, paced at `rate` per second over all threads (slot i at t0 + i / rate), each as
    the consumer's identity through the unchanged SDK client, with no client-side retry: a 429 is counted, not
    hidden."""

    def __init__(self, emu: Any, targets: list[tuple[str, bytes, str]], rate: float) -> None:
        from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

        self.rate = rate
        self.policy = CountingPolicy()
        self.algorithm = KeyWrapAlgorithm.rsa_oaep_256
        self.targets = [
            (
                CryptographyClient(
                    key_id,
                    EmulatorCredential(principal, emu.tenant_id),
                    verify_challenge_resource=False,
                    connection_verify=emu.ca_cert,
                    retry_policy=RetryPolicy(retry_total=0),
                    per_retry_policies=[self.policy],
                ),
                wrapped,
            )
            for key_id, wrapped, principal in targets
        ]
        self.calls = 0
        self.failures = 0
        self._slot = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._warm_requests = 0

    def warm(self) -> None:
        for client, wrapped in self.targets:
            client.unwrap_key(self.algorithm, wrapped)
        self._warm_requests = self.policy.requests

    @property
    def requests(self) -> int:
        return self.policy.requests - self._warm_requests

    @property
    def throttled(self) -> int:
        return self.policy.throttled

    def start(self) -> None:
        if self.rate <= 0:
            return
        self._t0 = time.monotonic()
        for _ in range(LOAD_THREADS):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                slot = self._slot
                self._slot += 1
            wait = self._t0 + slot / self.rate - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            client, wrapped = self.targets[slot % len(self.targets)]
            try:
                client.unwrap_key(self.algorithm, wrapped)
            except AzureError:
                with self._lock:
                    self.failures += 1
            with self._lock:
                self.calls += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        for client, _ in self.targets:
            client.close()


class RawVault:
    """The naive baseline's Key Vault client: one kept-alive HTTPS connection, every wrap and unwrap remote."""

    def __init__(self, vault_url: str, credential: EmulatorCredential, ca: str) -> None:
        parts = urlsplit(vault_url)
        self.conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, context=ssl.create_default_context(cafile=ca)
        )
        token = credential.get_token("https://vault.azure.net/.default").token
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict) -> str:
        for _attempt in range(20):  # bounded: a 429 waits what Retry-After says
            self.conn.request("POST", f"{path}?api-version=7.6", json.dumps(body), self.headers)
            resp = self.conn.getresponse()
            data = json.loads(resp.read())
            if resp.status == 429:
                time.sleep(float(resp.getheader("Retry-After", "1")))
                continue
            if resp.status != 200:
                raise RuntimeError(f"naive {path}: HTTP {resp.status} {data.get('error', {}).get('code')}")
            return data["value"]
        raise RuntimeError(f"naive {path}: still throttled after 20 attempts")

    def close(self) -> None:
        self.conn.close()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _read_lines(proc: subprocess.Popen, into: list[dict]) -> None:
    for line in proc.stdout:
        with contextlib.suppress(ValueError):
            into.append(json.loads(line))


def _vault_requests(counters: dict[str, Any]) -> int:
    return sum(op["requests"] for ops in counters.values() for op in ops.values())


def _per_window(times: list[float]) -> list[int]:
    """Re-wrap calls in each epoch-aligned 10-s window (the budget's windows), first to last."""
    if not times:
        return []
    first = int(times[0] // WINDOW_SECONDS)
    counts = [0] * (int(times[-1] // WINDOW_SECONDS) - first + 1)
    for t in times:
        counts[int(t // WINDOW_SECONDS) - first] += 1
    return counts


def _window_figures(times: list[float], started: float, ended: float, limit: int) -> tuple[float, float, float]:
    """(budget use over the steady part, highest sliding 10-s window, highest epoch-aligned window), each as a
    percentage of the budget per window. The steady part is the whole epoch-aligned windows (the budget's own
    windows) between the first and the last re-wrap call; a run shorter than that is measured over its length."""
    if not times:
        return 0.0, 0.0, 0.0
    per_window: dict[int, int] = defaultdict(int)
    for t in times:
        per_window[int(t // WINDOW_SECONDS)] += 1
    first, last = int(times[0] // WINDOW_SECONDS), int(times[-1] // WINDOW_SECONDS)
    full = [per_window[i] for i in range(first + 1, last)]
    if full:
        steady = sum(full) / len(full) / limit * 100
    else:
        span = max(ended - started, 1e-9)
        steady = len(times) / (span / WINDOW_SECONDS) / limit * 100
    peak_sliding, j = 0, 0
    for i, t in enumerate(times):  # two pointers: calls in [times[j], times[j] + 10 s)
        while t - times[j] >= WINDOW_SECONDS:
            j += 1
        peak_sliding = max(peak_sliding, i - j + 1)
    peak_aligned = max(per_window.values())
    return round(steady, 1), round(peak_sliding / limit * 100, 1), round(peak_aligned / limit * 100, 1)


if __name__ == "__main__":
    main()
