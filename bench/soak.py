"""The lifecycle soak (issue 12): the whole local system runs through years of emulated time under faults, and every
step is checked against the invariants that keep customer-managed keys safe.

    .venv/bin/python bench/soak.py --days 730 --seed 1
    .venv/bin/python bench/soak.py --days 365 --hsm --seed 1   # on an emulated Managed HSM

It starts Azurite, the emulators and the devhost serving function_app.py (localrun.LocalSystem, free ports), seeded
with the reference deployment, plus `--deks` registry DEKs split over both keys, each with a message encrypted under
it. Then, one step per `--step-days` of emulated time (steps also land on each key's next rotation due date, so a
rotation is never late because a step jumped over it):

- the emulated clock moves: Key Vault's lifecycle raises its events and rotates by the keys' policies, Event Grid
  delivers them to the devhost, whose own queue workers re-wrap the DEKs and deliver the alerts;
- the devhost's real-time cron does not follow the emulated clock, so the soak runs the compliance sweep itself after
  each clock move (`POST /admin/functions/compliance_sweep`; the sweep interval is therefore one step);
- a workload: the emulated MySQL server and disk encryption set unwrap their own DEKs on every clock move (the
  emulators' consumers), and an application opens random registry DEKs through the envelope API and decrypts what
  it encrypted under them;
- faults at random steps, from `--seed`: 429 storms with and without Retry-After, 503s and dropped connections (the
  emulators' fault API, for that step), SIGKILL of the devhost while a re-wrap or a rotation is in flight (then a
  restart on the same port), Event Grid deliveries duplicated and reordered (captured events re-posted to the
  devhost's webhook), access drift (random grants of key use to random principals at the key, vault or resource
  group), and one revocation and restore cycle per emulated year (issue 11's API; `--no-revocation` skips it);
- invariants, each violation recorded with its step and cause: consumers available except inside a sanctioned
  revocation; every DEK in the registry, unchanged in its check value, on an enabled version, and the sampled ones
  opening and decrypting (all of them at the end); after the step's reconcile only allowed principals hold key use;
  every key's current version younger than rotate_after plus one step; no more new versions than due rotations; no
  disabled version that a DEK or consumer depends on; and, at the end, no DEK plaintext or vault private key in any
  log line of any process (raw, hex, base64 standard and URL-safe; bench/soak_leaks.py).

The soak runs the reference inventory with one change, `policy.remove_inherited_grants: true`, written to its own
state directory: drift granted at the vault or resource group is then the app's to remove, so the invariant "only the
allowed principals hold key use after the reconcile" can hold for every scope the drift uses. With `--shard-keys KEY`
that key's dek-table also gets `hierarchy: shard-keys` and `shard_key_rotate_after: P60D` (bench/soak_shard_keys.py):
its DEKs are made and opened through shard keys, its KEK rotations re-wrap shard keys, its shard keys rotate on their
schedule, and the registry, retirement and settle invariants check shard keys as well.

The local cloud runs on Azure's time throughout (the local run's defaults): a role change reaches Key Vault after its
own delay of up to 10 emulated minutes, and every consumer checks its key at every emulated minute while one is
pending (a minute lost outside a sanctioned revocation is the violation `available-while-rbac-propagates`); a MySQL
or disk encryption set key change is a long-running operation of 40 s; a disk encryption set follows the latest
version within 30 emulated minutes and drops the previous one once its disks have moved; Event Grid gives up on a
delivery after 30 s and delivers it again.

The last line printed is one JSON summary (days, steps, rotations, expected_rotations, extra_versions, deks,
deks_lost, unsanctioned_unavailable_steps, drift_injected, drift_remediated, faults, alerts, invariant_violations,
key_material_leaks, propagation (windows_checked, minute_checks, unavailable_minutes), eventgrid (deliveries, timeouts,
redeliveries_after_timeout), long_running (operations by status, writes per consumer), wall_s, plus violations: the
first ones, with step and cause). Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.soak_leaks import SecretIndex, scan_lines, scan_logs  # noqa: E402
from bench.soak_shard_keys import ShardKeyView, inventory_with_shard_keys  # noqa: E402
from localrun.system import LocalSystem, Ports  # noqa: E402
from shared import envelope, roles  # noqa: E402
from shared.envelope.sharding import shard_of  # noqa: E402
from shared.errors import CmkError  # noqa: E402
from shared.model import LifetimeAction, RotationActionType, RotationPolicy, WrappedDek, normalize_key_id  # noqa: E402

DAY = 86_400.0
NEVER = "0 0 0 1 1 *"  # the devhost's own timer never fires: the soak runs the sweep after each clock move
FAST_QUEUES = {"maxPollingInterval": "00:00:01", "visibilityTimeout": "00:00:02", "batchSize": 16, "maxDequeueCount": 5}
KEYS = ("aks-encryption-key", "mysql-encryption-key")
STORM_KINDS = {"429-storm": "429", "429-storm-no-retry-after": "429-no-retry-after", "503": "503", "dropped": "reset"}
KILL_KINDS = ("kill-mid-rewrap", "kill-mid-rotation")
EVENT_KINDS = ("eventgrid-duplicate", "eventgrid-reorder")
STEP_KINDS = (*STORM_KINDS, *EVENT_KINDS, "access-drift")
ALL_KINDS = (*STEP_KINDS, *KILL_KINDS)
KEY_USE_ROLES = {
    r.guid: r.name
    for r in (roles.CRYPTO_USER, roles.CRYPTO_SERVICE_ENCRYPTION_USER, roles.CRYPTO_OFFICER, roles.ADMINISTRATOR)
}
DRIFT_ROLES = (roles.CRYPTO_USER, roles.CRYPTO_SERVICE_ENCRYPTION_USER, roles.CRYPTO_OFFICER)
# On a Managed HSM (--hsm): its local RBAC roles that use keys (Administrator and Crypto Officer use none).
HSM_KEY_USE_ROLES = {r.guid: r.name for r in (roles.HSM_CRYPTO_USER, roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER)}
HSM_DRIFT_ROLES = (roles.HSM_CRYPTO_USER, roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER)
SETTLE_SECONDS = 120.0
MAX_VIOLATIONS_SHOWN = 20


@dataclass(frozen=True)
class SoakConfig:
    days: int = 730
    seed: int = 1
    deks: int = 2000
    step_days: float = 2.0
    opens_per_step: int = 12
    fault_rate: float = 0.06  # the chance that a step without a due rotation gets a fault
    revocation: bool = True  # the yearly revocation and restore cycle (issue 11's API)
    keep: Path | None = None  # keep the state directory (logs) here instead of a temporary one
    hsm: bool = False  # the reference deployment on an emulated Managed HSM (inventory/reference-hsm.yaml)
    shard_keys: str | None = None  # this key's dek-table on `hierarchy: shard-keys` (bench/soak_shard_keys.py)


@dataclass(frozen=True)
class Violation:
    step: int
    day: float
    invariant: str
    cause: str


@dataclass
class KnownDek:
    """What the application knows about one DEK it made: the plaintext, its check value, and a message under it."""

    key: str
    partition: str
    dek_id: str
    kcv: str
    secret: bytes = field(repr=False)
    message: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


@dataclass
class Sanction:
    """A revocation in force: the consumers of `key` may be unavailable and its consumer may lack access."""

    key: str
    revocation_id: str
    started_step: int
    ended_step: int | None = None


class Soak:
    def __init__(self, config: SoakConfig, out=sys.stderr) -> None:
        self.config = config
        self.out = out
        self.rng = random.Random(config.seed)
        self.violations: list[Violation] = []
        self.faults: Counter[str] = Counter()
        self.fault_log: list[dict[str, Any]] = []
        self.drift_injected = 0
        self.drift_remediated = 0
        self.drift_pending: list[dict[str, Any]] = []
        self.deks: dict[tuple[str, str], KnownDek] = {}
        self.sanctions: list[Sanction] = []
        self.step = 0
        self.expected_rotations: Counter[str] = Counter()
        self.due_at: dict[str, float] = {}
        self.versions_seen: dict[str, set[str]] = {}
        self.unavailable_steps = 0
        self.sanctioned_unavailable_steps = 0
        self.unavailable_seen: dict[str, int] = {}
        self.window_seen: dict[str, int] = {}  # consumer -> unavailable minutes inside propagation windows so far
        self.window_minutes_unsanctioned = 0
        # A Managed HSM sends no events: there are none to duplicate or reorder.
        self.pending_kinds = set(STEP_KINDS) - (set(EVENT_KINDS) if config.hsm else set())
        self.key_use_roles = HSM_KEY_USE_ROLES if config.hsm else KEY_USE_ROLES
        self.drift_roles = HSM_DRIFT_ROLES if config.hsm else DRIFT_ROLES
        self.pending_kills = list(KILL_KINDS)
        self.revocation_years_done: set[int] = set()
        self.revocation_day = self.rng.randint(120, 165)  # day of each emulated year the drill runs
        self.soak_lines: list[str] = []
        self.system: LocalSystem | None = None
        self._tmp: Path | None = None
        self._now_cached = 0.0
        self.phase_s: Counter[str] = Counter()
        self.busy = False

    # ---- output ---------------------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        line = f"[soak step {self.step} day {self.day():.1f}] {text}"
        self.soak_lines.append(line)
        print(line, file=self.out, flush=True)

    def violation(self, invariant: str, cause: str) -> None:
        found = Violation(self.step, round(self.day(), 2), invariant, cause)
        self.violations.append(found)
        self.say(f"VIOLATION {invariant}: {cause}")

    # ---- the system -----------------------------------------------------------------------------------------------
    def up(self) -> None:
        base = self.config.keep or Path(tempfile.mkdtemp(prefix="cmk-soak-"))
        if self.config.keep is None:
            self._tmp = base
        else:
            shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True, exist_ok=True)
        inventory = base / "soak-inventory.yaml"
        text = (ROOT / "inventory" / ("reference-hsm.yaml" if self.config.hsm else "reference.yaml")).read_text()
        text = text.replace("policy:\n", "policy:\n  remove_inherited_grants: true\n", 1)
        if self.config.shard_keys:
            text = inventory_with_shard_keys(text, self.config.shard_keys)
        inventory.write_text(text)
        host = json.loads((ROOT / "host.json").read_text())
        host["extensions"]["queues"].update(FAST_QUEUES)
        (base / "host.json").write_text(json.dumps(host))
        self.system = LocalSystem(
            base / "run",
            ports=Ports.free(),
            extra_settings={"CMK_SWEEP_SCHEDULE": NEVER},
            inventory=inventory,
            host_json=base / "host.json",
            hsm=self.config.hsm,
        )
        self.system.up()
        cloud = self.system.cloud
        self.inventory = cloud.inventory()
        self.ids = cloud.identities
        self.vault = cloud.keyvault(self.ids.app)  # the application's identity: the app and its DEK registry
        from shared.azure.dekstore import TableDekStore
        from shared.azure.tables import LazyTable, table_client

        table = self.system.app_settings().get("CMK_DEK_TABLE") or "cmkdeks"
        self.table = table_client(table, connection_string=self.system.storage_connection)
        self.store = TableDekStore(LazyTable(self.table))
        sk_table = self.system.app_settings().get("CMK_SHARD_KEY_TABLE") or "cmkshardkeys"
        self.shard_keys = ShardKeyView(self.config.shard_keys, sk_table, self.system.storage_connection)
        self.start = cloud.emulated_now()
        self.rotate_after = {k: self.inventory.key(k).rotation.rotate_after.delta.total_seconds() for k in KEYS}
        for name in KEYS:
            current = self.current(name)
            self.versions_seen[name] = {v.version for v in self.versions(name)}
            self.due_at[name] = current.created.timestamp() + self.rotate_after[name]

    def down(self) -> None:
        with contextlib.suppress(Exception):
            self.vault.close()
        if self.system is not None:
            self.system.down()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def cloud(self):
        return self.system.cloud

    def day(self) -> float:
        """Emulated days since the start, as of the last clock read (for log lines and violation records)."""
        return self._now_cached

    def now(self) -> datetime:
        now = self.cloud.emulated_now()
        self._now_cached = (now - self.start).total_seconds() / DAY
        return now

    def advance(self, seconds: float) -> None:
        self.cloud.admin("POST", "/clock", {"advance": seconds})
        self.now()

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"x-functions-key": self.system.devhost["function_key"]}
        return requests.request(method, f"{self.system.devhost['url']}{path}", headers=headers, timeout=60, **kwargs)

    def run_function(self, name: str, timeout: float = 120.0) -> str:
        child = self.system.devhost_child()
        mark = len(child.lines)
        response = requests.post(
            f"{self.system.devhost['url']}/admin/functions/{name}",
            json={"input": ""},
            headers={"x-functions-key": self.system.devhost["master_key"]},
            timeout=30,
        )
        if response.status_code != 202:
            raise RuntimeError(f"running {name}: {response.status_code} {response.text[:200]}")
        return child.wait_for(lambda line: f"Executed 'Functions.{name}' (" in line, timeout, start=mark)

    def sweep(self) -> bool:
        """One compliance sweep, waited for; a sweep that fails or never ends is a violation, not the soak's end."""
        try:
            line = self.run_function("compliance_sweep")
        except (TimeoutError, RuntimeError, requests.RequestException) as exc:
            self.violation("sweep-runs", f"the sweep did not complete: {exc}")
            return False
        if "(Succeeded" not in line:
            self.violation("sweep-runs", f"the sweep failed: {line[-200:]}")
            return False
        return True

    def current(self, name: str):
        return self.vault.get_key(self.inventory.key(name).ref)

    def versions(self, name: str):
        return self.vault.list_versions(self.inventory.key(name).ref)

    def status(self) -> dict[str, dict[str, Any]]:
        response = self.api("GET", "/api/keys")
        response.raise_for_status()
        return {k["name"]: k for k in response.json()["keys"]}

    def settled(self) -> tuple[bool, str]:
        """Nothing in flight: every DEK re-wrapped to the current version, every consumer on it and available."""
        try:
            status = self.status()
        except (requests.RequestException, ValueError) as exc:
            return False, f"GET /api/keys: {exc}"
        for name in KEYS:
            key = status.get(name)
            if key is None:
                return False, f"{name} missing from GET /api/keys"
            rewrap = key["dependents"]["rewrap"]
            if rewrap["remaining"] or rewrap["running"]:
                return False, f"{name}: re-wrap remaining {rewrap['remaining']}"
            for consumer in key["dependents"]["consumers"]:
                if consumer["version"] != key["version"] and not self.sanctioned(name):
                    return False, f"{name}: consumer {consumer['kind']} on {consumer['version']}"
            behind = {v: n for v, n in key["dependents"]["deks_by_version"].items() if v != key["version"]}
            if behind:
                return False, f"{name}: DEKs on older versions {behind}"
            try:
                shard_keys_behind = self.shard_keys.behind(self.inventory.key(name), key["version"])
            except CmkError as exc:
                return False, f"{name}: shard keys unreadable ({exc.code})"
            if shard_keys_behind:
                return False, f"{name}: {shard_keys_behind} shard keys on older versions"
        return True, ""

    def settle(self, why: str) -> bool:
        """Wait for the system to finish what it started. Still unfinished after 10 s, 11 emulated minutes pass and
        the sweep runs: what a crash left (a page whose message is leased to a dead instance for 10 real minutes)
        is then the sweep's to resume, as it is in Azure once nobody has recorded a page for 10 minutes. A system
        that never settles is a violation."""
        deadline = time.monotonic() + SETTLE_SECONDS
        last_sweep = time.monotonic()
        reason = ""
        while time.monotonic() < deadline:
            ok, reason = self.settled()
            if ok:
                return True
            if time.monotonic() - last_sweep > 10:
                self.advance(11 * 60)
                self.sweep()
                last_sweep = time.monotonic()
            time.sleep(0.25)
        self.violation("settles", f"{why}: still in flight after {SETTLE_SECONDS:.0f} s ({reason})")
        return False

    # ---- seeding the application's DEKs ---------------------------------------------------------------------------
    def seed_deks(self) -> None:
        started = time.monotonic()
        count = self.config.deks
        names = [KEYS[i % len(KEYS)] for i in range(count)]
        currents = {name: self.current(name) for name in KEYS}

        def one(i: int) -> KnownDek:
            return self.make_dek(names[i], currents[names[i]], f"soak-{i:05d}")

        with ThreadPoolExecutor(8) as pool:
            for dek in pool.map(one, range(count)):
                self.deks[(dek.partition, dek.dek_id)] = dek
        self.say(f"seeded {count} DEKs in {time.monotonic() - started:.1f} s")

    def make_dek(self, name: str, current, dek_id: str) -> KnownDek:
        """A DEK as an application makes one (a random 256-bit key wrapped locally under the current version, its
        KCV beside it in the registry), with a message encrypted under it to decrypt later."""
        managed = self.inventory.key(name)
        if self.config.shard_keys == name:
            return self.make_sharded_dek(managed, current, dek_id)
        consumer = next(c for c in managed.consumers if c.kind.value == "dek-table")
        partition = shard_of(dek_id, consumer.options["partition_prefix"], consumer.options["shards"])
        secret = self.rng.randbytes(32)
        wrapped = self.vault.wrap_key(managed.ref, current.version, secret)
        kcv = envelope.key_check_value(secret)
        record = WrappedDek(partition, dek_id, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, kcv)
        self.store.add(record)
        message = f"soak message {dek_id} {uuid.UUID(int=self.rng.getrandbits(128))}".encode()
        with envelope.DekHandle(record, secret) as handle:
            ciphertext = envelope.encrypt(handle, message, aad=b"soak")
        return KnownDek(name, partition, dek_id, kcv, secret, message, ciphertext)

    def make_sharded_dek(self, managed, current, dek_id: str) -> KnownDek:
        """A DEK of the shard-keys key, made as an application makes one: through the envelope API, which seals it
        under its shard's key (making and wrapping that key the first time the shard needs one)."""
        made = envelope.create_sharded_dek(
            managed, vault=self.vault, store=self.store, shardkeys=self.shard_keys.store, cache=self.shard_keys.cache,
            dek_id=dek_id, current=current,
        )  # fmt: skip
        with made as handle:
            secret = bytes(handle._secret)
            message = f"soak message {dek_id} {uuid.UUID(int=self.rng.getrandbits(128))}".encode()
            ciphertext = envelope.encrypt(handle, message, aad=b"soak")
            return KnownDek(managed.name, handle.partition, dek_id, handle.record.kcv, secret, message, ciphertext)

    # ---- workload -------------------------------------------------------------------------------------------------
    def open_and_decrypt(self, dek: KnownDek, attempts: int = 6) -> str | None:
        """None when the DEK opened through the envelope API and decrypted its message; else why not."""
        for attempt in range(attempts):
            try:
                opened = envelope.open_any(
                    dek.partition, dek.dek_id, vault=self.vault, store=self.store, shardkeys=self.shard_keys.store,
                    cache=self.shard_keys.cache,
                )  # fmt: skip
                with opened as handle:
                    if envelope.decrypt(handle, dek.ciphertext, aad=b"soak") != dek.message:
                        return "decrypted to another message"
                return None
            except CmkError as exc:
                transient = exc.code in ("Throttled", "ServiceUnavailable", "UnexpectedResponse")
                if not transient or attempt == attempts - 1:
                    return f"{exc.code}: {str(exc)[:200]}"
                time.sleep(0.5 * (attempt + 1))
        return "unreachable"

    def workload(self) -> None:
        sample = self.rng.sample(sorted(self.deks), min(self.config.opens_per_step, len(self.deks)))
        for ref in sample:
            dek = self.deks[ref]
            problem = self.open_and_decrypt(dek)
            if problem:
                self.violation("dek-opens", f"{dek.key} DEK {dek.partition}/{dek.dek_id}: {problem}")
        # the application keeps making DEKs as it goes, under whatever version is current now
        for name in KEYS:
            dek = self.make_dek(name, self.current(name), f"soak-s{self.step:05d}-{name[:3]}")
            self.deks[(dek.partition, dek.dek_id)] = dek

    # ---- faults ---------------------------------------------------------------------------------------------------
    def record_fault(self, kind: str, **detail: Any) -> None:
        self.faults[kind] += 1
        self.fault_log.append({"kind": kind, "step": self.step, "day": round(self.day(), 2), **detail})
        self.say(f"fault {kind} {json.dumps(detail, sort_keys=True)}")

    def choose_fault(self, due: list[str], steps_left: int) -> str | None:
        if due:
            if self.pending_kills:
                return self.pending_kills.pop(0)
            return self.rng.choice(KILL_KINDS) if self.rng.random() < 0.5 else None
        have_events = bool(self.keyvault_events("Microsoft.KeyVault.KeyNewVersionCreated"))
        pending = sorted(k for k in self.pending_kinds if have_events or k not in EVENT_KINDS)
        if pending and (self.rng.random() < self.config.fault_rate * 2 or steps_left <= 3 * len(self.pending_kinds)):
            kind = self.rng.choice(pending)
            self.pending_kinds.discard(kind)
            return kind
        if self.rng.random() < self.config.fault_rate:
            return self.rng.choice([k for k in STEP_KINDS if have_events or k not in EVENT_KINDS])
        return None

    def storm(self, kind: str) -> None:
        """A burst: the next few Key Vault requests (whoever makes them: the event handlers, the re-wrap workers, the
        sweep) fail this way, then the vault recovers. A burst longer than the retry schedule makes a call fail,
        which the app must survive too."""
        count = self.rng.randint(2, 4)
        spec: dict[str, Any] = {"kind": STORM_KINDS[kind], "count": count}
        if kind == "429-storm":
            spec["retry_after"] = self.rng.choice([1, 2])
        self.cloud.admin("POST", "/faults", spec)
        self.record_fault(kind, requests=count)

    def end_storm(self) -> None:
        self.cloud.admin("DELETE", "/faults")
        self.cloud.admin("DELETE", "/latency")

    def keyvault_events(self, event_type: str) -> list[dict[str, Any]]:
        events = self.cloud.admin("GET", f"/eventgrid/events?eventType={event_type}")["value"]
        return [e for e in events if e.get("origin") == "system"]

    def repost(self, events: list[dict[str, Any]]) -> list[int]:
        """Deliver captured Key Vault events to the devhost's webhook again, as Event Grid's at-least-once delivery
        may (same ids, Event Grid schema, one event per request)."""
        url = (
            f"{self.system.devhost['url']}/runtime/webhooks/eventgrid?functionName=keyvault_events"
            f"&code={self.system.devhost['eventgrid_key']}"
        )
        statuses = []
        for event in events:
            body = {k: v for k, v in event.items() if k not in ("origin", "cloudEvent")}
            headers = {
                "aeg-event-type": "Notification",
                "aeg-subscription-name": "CMK-KEYVAULT-EVENTS",
                "aeg-delivery-count": "1",
                "Content-Type": "application/json",
            }
            child = self.system.devhost_child()
            mark = len(child.lines)
            response = requests.post(url, data=json.dumps([body]), headers=headers, timeout=60)
            statuses.append(response.status_code)
            with contextlib.suppress(TimeoutError):
                child.wait_for(lambda line: "Executed 'Functions.keyvault_events' (" in line, 60, start=mark)
        return statuses

    def eventgrid_fault(self, kind: str) -> None:
        created = self.keyvault_events("Microsoft.KeyVault.KeyNewVersionCreated")
        if kind == "eventgrid-duplicate":
            chosen = [created[-1], created[-1]]
        else:  # an older event arrives after a newer one: a version the consumers have long left
            older = created[: max(1, len(created) - 1)]
            chosen = [created[-1], self.rng.choice(older)]
            others = self.keyvault_events("Microsoft.KeyVault.KeyNearExpiry")
            if others:
                chosen.append(self.rng.choice(others))
            chosen.reverse()
        statuses = self.repost(chosen)
        self.record_fault(kind, events=[e["subject"].rsplit("/", 1)[-1] for e in chosen], statuses=statuses)

    def drift(self) -> None:
        """A random grant of key use to a random principal and scope, as someone with access might make by hand."""
        name = self.rng.choice(KEYS)
        key = self.inventory.key(name)
        other = self.inventory.key(next(k for k in KEYS if k != name))
        principal, who = self.rng.choice(
            [
                (str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "stranger"),
                (other.identity.principal_id, "the other key's consumer"),
                (key.identity.principal_id, "the key's own consumer, a broader role"),
            ]
        )
        role = self.rng.choice(self.drift_roles)
        if who.startswith("the key's own") and role == key.role:
            role = roles.HSM_CRYPTO_USER if self.config.hsm else roles.CRYPTO_OFFICER
        rg_scope = key.scope.split("/providers/")[0]
        vault = self.cloud.vault_resource_id
        # On a Managed HSM, key use is granted only in its local RBAC (/keys/<name>, /keys, /): a grant at the
        # resource group is ARM's and reaches no HSM key.
        wider = (f"{vault}/keys", "all keys") if self.config.hsm else (rg_scope, "rg")
        scope, where = self.rng.choice([(key.scope, "key"), (vault, "vault"), wider])
        assignment = self.cloud.assign(scope, role, principal)
        self.drift_injected += 1
        self.drift_pending.append({"id": assignment.lower(), "scope": scope, "principal": principal, "who": who})
        self.record_fault("access-drift", key=name, who=who, role=role.name, scope=where)

    def kill_mid_rewrap(self, due: list[str]) -> None:
        """The clock has moved past a due date: the vault rotated and the devhost's workers are re-wrapping. Kill the
        host once some DEKs have moved and others have not."""
        total = len(self.deks)
        remaining = total
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            remaining = self.rewrap_remaining()
            if 0 < remaining < total * 0.9 or remaining == 0:
                break
            time.sleep(0.05)
        time.sleep(self.rng.uniform(0.0, 0.3))
        self.system.kill_devhost()
        self.record_fault("kill-mid-rewrap", keys=due, deks_on_old_versions_at_kill=remaining, deks=total)
        self.system.restart_devhost()
        self.after_crash()

    def after_crash(self) -> None:
        """Time passes after a crash as it does in Azure: the dead instance's queue leases (10 minutes) and the
        sweep's idea of a stalled re-wrap (no page for 10 minutes) both run out, so the next sweep takes over."""
        self.advance(11 * 60)

    def rewrap_remaining(self) -> int:
        counts = 0
        for name in KEYS:
            current = self.current(name)
            for key_id, n in self.store.count_by_key_id(self.inventory.key(name).ref).items():
                if not key_id.endswith(current.version):
                    counts += n
            counts += self.shard_keys.behind(self.inventory.key(name), current.version)
        return counts

    def notify_only(self, name: str) -> None:
        """The vault's own Rotate action taken away (policy drift), so the app's sweep is the one that rotates."""
        ref = self.inventory.key(name).ref
        self.vault.set_rotation_policy(
            ref, RotationPolicy(None, (LifetimeAction(RotationActionType.NOTIFY, None, "P30D"),))
        )

    def kill_mid_rotation(self, due: list[str]) -> None:
        """The app's sweep rotates the due key (its policy no longer rotates it); kill the host while the new version
        is being made (Key Vault's create answers slowly), restart, and let the next sweep finish."""
        name = due[0]
        before = {v.version for v in self.versions(name)}
        self.cloud.admin("POST", "/latency", {"ms": 1500, "operation": "createkey"})
        self.cloud.admin("POST", "/latency", {"ms": 1500, "operation": "rotatekey"})
        claims_before = self.claims(name)
        requests.post(
            f"{self.system.devhost['url']}/admin/functions/compliance_sweep",
            json={"input": ""},
            headers={"x-functions-key": self.system.devhost["master_key"]},
            timeout=30,
        )
        # the rotation's claim is taken just before the new version is asked for: kill while that request waits
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.claims(name) <= claims_before:
            time.sleep(0.05)
        claimed = self.claims(name) > claims_before
        time.sleep(self.rng.uniform(0.1, 1.0))
        self.system.kill_devhost()
        self.cloud.admin("DELETE", "/latency")
        time.sleep(2.0)  # a create the dead host sent may still land
        made = {v.version for v in self.versions(name)} - before
        self.record_fault("kill-mid-rotation", key=name, claim_taken=claimed, versions_made_by_dead_host=len(made))
        self.system.restart_devhost()
        self.after_crash()  # the crashed sweep's claim holds for 10 minutes; the next sweep after it takes over

    def claims(self, name: str) -> int:
        from azure.data.tables import TableClient

        table = TableClient.from_connection_string(self.system.storage_connection, "cmkclaims")
        with contextlib.suppress(Exception):
            return sum(1 for e in table.list_entities() if name in str(e.get("RowKey", "")))
        return 0

    # ---- the revocation and restore cycle (issue 11's API) -----------------------------------------------------
    def revocation_cycle(self) -> None:
        """Once per emulated year: revoke the MySQL server's use of its key (POST /api/revocations, executed), watch
        it verified, let three days pass under it (each with a sweep: reconciliation must not grant the server
        back, and its unavailability is sanctioned), then restore it (POST /api/restorations) and watch the server
        come back. Every deviation is a violation; the window's unavailability is not."""
        name = "mysql-encryption-key"
        key = self.inventory.key(name)
        body = {"key": name, "service": "mysql", "action": "revoke-access", "reason": f"soak drill, step {self.step}"}
        plan = self.api("POST", "/api/revocations", json=body)
        if plan.status_code != 200 or plan.json().get("dry_run") is not True:
            self.violation("revocation", f"the dry run answered {plan.status_code} {plan.text[:200]}")
        answer = self.api("POST", "/api/revocations", json={**body, "dry_run": False})
        if answer.status_code != 202:
            self.violation("revocation", f"POST /api/revocations: {answer.status_code} {answer.text[:300]}")
            return
        revocation_id = answer.json()["id"]
        sanction = Sanction(name, revocation_id, self.step)
        self.sanctions.append(sanction)
        again = self.api("POST", "/api/revocations", json={**body, "dry_run": False})
        if again.status_code != 200 or again.json().get("id") != revocation_id:
            self.violation("revocation", f"a repeated revocation answered {again.status_code} {again.text[:200]}")
        # The removal reaches Key Vault after RBAC propagation (up to 10 emulated minutes): let it pass; the consumers
        # check their keys at every emulated minute on the way, so the server notices as soon as it takes effect.
        self.cloud.let_rbac_propagate()
        state = self.wait_revocation(revocation_id, {"verified", "failed"})
        self.record_fault("revocation", key=name, state=state)
        if state != "verified":
            self.violation("revocation", f"revocation {revocation_id} ended {state}, not verified")
        for _ in range(3):
            self.advance(DAY)
            self.sweep()
            if self.consumer_available(name):
                self.violation("revocation", f"{name}: the server is available again inside the revocation")
            if self.holds_key_use(key, key.identity.principal_id):
                self.violation("revocation", f"{name}: reconciliation granted the revoked server its key back")
        answer = self.api(
            "POST", "/api/restorations", json={"revocation_id": revocation_id, "reason": "soak: drill over"}
        )
        if answer.status_code != 202:
            self.violation("revocation", f"POST /api/restorations: {answer.status_code} {answer.text[:300]}")
        self.cloud.let_rbac_propagate()  # the grant given back reaches Key Vault after RBAC propagation too
        state = self.wait_revocation(revocation_id, {"restored", "failed"})
        if state != "restored":
            self.violation("revocation", f"the restoration of {revocation_id} ended {state}, not restored")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.consumer_available(name):
            self.advance(60)
            time.sleep(0.25)
        sanction.ended_step = self.step
        if not self.consumer_available(name):
            self.violation("revocation", f"{name}: the server is still unavailable after the restoration")
        if not self.holds_key_use(key, key.identity.principal_id):
            self.violation("revocation", f"{name}: the restoration did not give the server its grant back")
        self.unavailable_seen = self.unavailable_counts()  # what the sanctioned window counted is not a violation
        self.window_seen = self.window_minutes()

    def holds_key_use(self, key, principal: str) -> bool:
        access = self.cloud.access()
        try:
            return any(
                a.principal_id.lower() == principal.lower() and a.role_guid in self.key_use_roles
                for a in access.list_assignments(key.scope)
            )
        finally:
            access.close()

    def wait_revocation(self, revocation_id: str, states: set[str], timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            response = self.api("GET", f"/api/revocations/{revocation_id}")
            if response.status_code == 200:
                state = response.json().get("state", "unknown")
                if state in states:
                    return state
            time.sleep(0.5)
        return state

    def sanctioned(self, key: str) -> bool:
        return any(s.key == key and s.ended_step is None for s in self.sanctions)

    def consumer_available(self, name: str) -> bool:
        consumer = next(c for c in self.inventory.key(name).consumers if c.resource_id)
        history = self.cloud.admin("GET", "/consumers")["consumers"]
        found = next((h for rid, h in history.items() if rid.lower() == consumer.resource_id.lower()), None)
        return bool(found and found["transitions"] and found["transitions"][-1]["available"])

    # ---- invariants -----------------------------------------------------------------------------------------------
    def unavailable_counts(self) -> dict[str, int]:
        history = self.cloud.admin("GET", "/consumers")["consumers"]
        return {rid.lower(): h["unavailable_checks"] for rid, h in history.items()}

    def window_minutes(self) -> dict[str, int]:
        """Per consumer, the emulated minutes inside RBAC propagation windows in which it could not use its key."""
        rbac = self.cloud.admin("GET", "/rbac/propagation")
        return {rid.lower(): n for rid, n in rbac["unavailable"].items()}

    def check_windows(self) -> None:
        """Availability at every emulated minute of every propagation window (the emulators' per-minute checks): a
        minute lost outside a sanctioned revocation is a violation of its own."""
        counts = self.window_minutes()
        for rid, n in counts.items():
            lost = n - self.window_seen.get(rid, 0)
            if lost <= 0:
                continue
            key = next((k for k in KEYS if any(c.resource_id.lower() == rid for c in self.consumers_of(k))), "?")
            if not self.sanctioned(key):
                self.window_minutes_unsanctioned += lost
                self.violation(
                    "available-while-rbac-propagates",
                    f"{rid.rsplit('/', 1)[-1]} could not use its key for {lost} emulated minute(s) of a propagation "
                    "window",
                )
        self.window_seen = counts

    def check_consumers(self) -> None:
        self.check_windows()
        counts = self.unavailable_counts()
        unsanctioned = []
        for rid, n in counts.items():
            if n > self.unavailable_seen.get(rid, 0):
                key = next((k for k in KEYS if any(c.resource_id.lower() == rid for c in self.consumers_of(k))), "?")
                if not self.sanctioned(key):
                    unsanctioned.append(rid.rsplit("/", 1)[-1])
        self.unavailable_seen = counts
        if unsanctioned:
            self.unavailable_steps += 1
            history = self.cloud.admin("GET", "/consumers")["consumers"]
            errors = {rid.rsplit("/", 1)[-1]: h["last_error"] for rid, h in history.items()}
            self.violation("consumers-available", f"unavailable outside a revocation: {unsanctioned} ({errors})")

    def consumers_of(self, name: str):
        return [c for c in self.inventory.key(name).consumers if c.resource_id]

    def check_registry(self) -> None:
        """Every DEK the application made is in the registry with its check value, on an enabled version."""
        self.shard_keys.begin_check(self.inventory)
        rows = {
            (e["PartitionKey"], e["RowKey"]): e
            for e in self.table.list_entities(select=["PartitionKey", "RowKey", "KeyId", "Kcv"])
        }
        enabled = {}
        for name in KEYS:
            for version in self.versions(name):
                enabled[version.key_id.lower()] = version.enabled
        for ref, dek in self.deks.items():
            row = rows.get(ref)
            if row is None:
                self.violation("dek-registry", f"DEK {ref[0]}/{ref[1]} is gone from the registry")
                continue
            if row.get("Kcv") not in (None, dek.kcv):
                self.violation("dek-registry", f"DEK {ref[0]}/{ref[1]}: its check value changed")
            key_id = str(row.get("KeyId", "")).lower()
            if "/shards/" in key_id:
                problem = self.shard_keys.registry_problem(self.inventory.key(dek.key), key_id, ref[0], enabled)
                if problem and not self.sanctioned(dek.key):
                    self.violation("dek-registry", f"DEK {ref[0]}/{ref[1]}: {problem}")
                continue
            if not enabled.get(key_id, False) and not self.sanctioned(dek.key):
                self.violation("dek-registry", f"DEK {ref[0]}/{ref[1]} is wrapped under a disabled or unknown {key_id}")
        for name in KEYS:  # settled: the counters status and retirement read agree with a scan of the rows
            self.check_counters(name)

    def check_counters(self, name: str, attempts: int = 5) -> None:
        """Each key id's counters (a shard key's id included) equal the rows, and so do the per-version sums that
        status and retirement read. A scheduled shard-key rotation may be moving DEKs while the check reads, and Tables
        has no snapshot across queries: the counters are read before and after the rows, and the comparison counts
        only when both reads agree (every DEK write changes its counter in the same transaction as the rows)."""
        ref = self.inventory.key(name).ref
        prefix = ref.normalized_id + "/"
        for _ in range(attempts):
            before = self.counted_per_key_id(ref)
            rowed: dict[str, int] = {}
            for row in self.table.list_entities(select=["KeyId"]):
                key_id = normalize_key_id(str(row.get("KeyId") or ""))
                if key_id.startswith(prefix):
                    rowed[key_id] = rowed.get(key_id, 0) + 1
            if self.counted_per_key_id(ref) == before:
                break
            time.sleep(0.5)  # a write landed while the rows were read: look again
        else:
            return  # the registry never held still for a check: nothing settled to compare
        if before != rowed:
            self.violation("dek-counters", f"{name}: counted per key id {before}, the rows hold {rowed}")
        counted, scanned = envelope.count_by_version(self.store.shard_counts(ref)), self.store.count_by_key_id(ref)
        if counted != scanned and self.counted_per_key_id(ref) == before:
            self.violation("dek-counters", f"{name}: the counters say {counted}, a scan finds {scanned}")

    def counted_per_key_id(self, ref: Any) -> dict[str, int]:
        everything: dict[str, int] = {}
        for counts in self.store.shard_counts(ref).values():
            for key_id, n in counts.items():
                everything[key_id] = everything.get(key_id, 0) + n
        return {k: n for k, n in everything.items() if n}

    def check_access(self) -> None:
        """After the reconcile, nobody but the key's consumer, the app and break-glass holds key use at any key."""
        access = self.cloud.access()
        try:
            for name in KEYS:
                key = self.inventory.key(name)
                allowed = {key.identity.principal_id.lower(), self.ids.app.lower(), self.ids.break_glass.lower()}
                if self.sanctioned(name):
                    allowed.discard(key.identity.principal_id.lower())
                holders = {}
                for assignment in access.list_assignments(key.scope):
                    if assignment.role_guid in self.key_use_roles:
                        holders.setdefault(assignment.principal_id.lower(), []).append(assignment)
                for principal, held in holders.items():
                    if principal not in allowed:
                        what = ", ".join(
                            f"{self.key_use_roles[a.role_guid]} at {a.scope.rsplit('/', 1)[-1]}" for a in held
                        )
                        self.violation("least-privilege", f"{name}: {principal} holds key use ({what})")
                consumer = key.identity.principal_id.lower()
                if not self.sanctioned(name) and not any(
                    a.role_guid == key.role.guid for a in holders.get(consumer, [])
                ):
                    self.violation("least-privilege", f"{name}: its consumer lost its {key.role.name} grant")
            still = []
            for drift in self.drift_pending:
                listed = {a.id.lower() for a in access.list_assignments(drift["scope"])}
                if drift["id"] in listed:
                    still.append(drift)
                    self.violation("drift-remediated", f"drift {drift['who']} at {drift['scope']} still granted")
                else:
                    self.drift_remediated += 1
            self.drift_pending = []
        finally:
            access.close()

    def check_rotation(self, now: datetime) -> None:
        for name in KEYS:
            versions = self.versions(name)
            current = max(versions, key=lambda v: v.created)
            age = (now - current.created).total_seconds()
            limit = self.rotate_after[name] + self.config.step_days * DAY + 3600
            if age > limit:
                self.violation("rotation-age", f"{name}: current version {age / DAY:.2f} days old")
            new = {v.version for v in versions} - self.versions_seen[name]
            self.versions_seen[name] |= new
            due = 0
            while now.timestamp() >= self.due_at[name]:
                due += 1
                self.expected_rotations[name] += 1
                self.due_at[name] = (current.created.timestamp() if new else now.timestamp()) + self.rotate_after[name]
            if len(new) > due:
                self.violation("one-version-per-rotation", f"{name}: {len(new)} new versions for {due} due rotations")
            # no version disabled while something depends on it (crypto-shred is the one exception: none here)
            depend = self.dependents(name)
            for version in versions:
                if not version.enabled and version.version in depend and not self.sanctioned(name):
                    self.violation(
                        "no-disabled-dependency", f"{name}/{version.version} disabled under {depend[version.version]}"
                    )

    def dependents(self, name: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for key_id, n in self.store.count_by_key_id(self.inventory.key(name).ref).items():
            found[key_id.rsplit("/", 1)[-1]] = f"{n} DEKs"
        for version, n in self.shard_keys.versions_in_use(self.inventory.key(name)).items():
            found[version] = f"{n} shard keys"
        for consumer in self.consumers_of(name):
            props = self.cloud.get_resource(consumer.resource_id)["properties"]
            url = (props.get("dataEncryption") or {}).get("primaryKeyURI") or (props.get("activeKey") or {}).get(
                "keyUrl"
            )
            if url:
                found[url.rstrip("/").rsplit("/", 1)[-1]] = consumer.resource_id.rsplit("/", 1)[-1]
        return found

    # ---- the loop -------------------------------------------------------------------------------------------------
    def next_step_seconds(self, now: datetime) -> float:
        """One step, or less when a key's rotation falls due sooner (landing just past it)."""
        step = self.config.step_days * DAY
        soonest = min(self.due_at[name] for name in KEYS) - now.timestamp() + 60
        end = self.start.timestamp() + self.config.days * DAY - now.timestamp()
        return max(60.0, min(step, soonest if soonest > 0 else step, end))

    def run(self) -> dict[str, Any]:
        wall = time.monotonic()
        self.up()
        try:
            self.seed_deks()
            self.sweep()
            self.settle("seeding")
            self.unavailable_seen = self.unavailable_counts()
            self.window_seen = self.window_minutes()  # the deployment's own grants propagating before the app ran
            end = self.start.timestamp() + self.config.days * DAY
            while self.now().timestamp() < end - 1:
                try:
                    self.one_step(end)
                except (CmkError, RuntimeError, TimeoutError, OSError, requests.RequestException) as exc:
                    # the harness could not finish the step (a service it checks with refused): say so, go on
                    self.violation("step-completes", f"{type(exc).__name__}: {str(exc)[:300]}")
            self.final_checks()
        finally:
            try:
                summary = self.summary(time.monotonic() - wall)
            finally:
                self.down()
        return summary

    @contextlib.contextmanager
    def timed(self, phase: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.phase_s[phase] += time.monotonic() - started

    def one_step(self, end: float) -> None:
        self.step += 1
        now = self.now()
        seconds = self.next_step_seconds(now)
        due = [name for name in KEYS if now.timestamp() + seconds >= self.due_at[name]]
        steps_left = int((end - now.timestamp()) / (self.config.step_days * DAY))
        kind = self.choose_fault(due, steps_left)
        year = int(self.day() // 365)
        soon = min(self.due_at.values()) - now.timestamp() < 6 * DAY  # the cycle takes 3 days: no rotation inside
        if (
            self.config.revocation
            and year not in self.revocation_years_done
            and self.day() - year * 365 >= self.revocation_day
            and not soon
            and kind is None
            and end - now.timestamp() > 10 * DAY
        ):
            self.revocation_years_done.add(year)
            self.revocation_cycle()
            now = self.now()
            seconds = self.next_step_seconds(now)
        if kind in STORM_KINDS:
            self.storm(kind)
        if kind == "kill-mid-rotation":
            self.notify_only(due[0])
        self.advance(seconds)
        if kind == "kill-mid-rewrap":
            self.kill_mid_rewrap(due)
        elif kind == "kill-mid-rotation":
            self.kill_mid_rotation(due)
        elif kind in EVENT_KINDS:
            self.eventgrid_fault(kind)
        elif kind == "access-drift":
            self.drift()
        with self.timed("sweep"):
            self.sweep()
        if due or kind is not None or self.busy:
            with self.timed("settle"):
                self.settle(f"step {self.step}")
        self.busy = bool(due)  # a rotation's aftermath (retirement, late alerts) is watched one more step
        if kind is not None:
            self.end_storm()
            with self.timed("sweep"):
                self.sweep()  # the first sweep after the trouble: the reconcile the invariants judge
            with self.timed("settle"):
                self.settle(f"step {self.step} after {kind}")
        now = self.now()
        with self.timed("workload"):
            self.workload()
        with self.timed("check_consumers"):
            self.check_consumers()
        with self.timed("check_registry"):
            self.check_registry()
        with self.timed("check_access"):
            self.check_access()
        with self.timed("check_rotation"):
            self.check_rotation(now)
        if self.step % 25 == 0 or due:
            due_so_far = sum(self.expected_rotations.values())
            self.say(f"ok: {due_so_far} rotations due so far, {len(self.violations)} violations")

    def final_checks(self) -> None:
        """Every DEK opens to its original plaintext; no secret in any log line of any process."""
        self.end_storm()
        lost = []

        def check(ref):
            dek = self.deks[ref]
            return ref, self.open_and_decrypt(dek, attempts=10)

        with ThreadPoolExecutor(8) as pool:
            for ref, problem in pool.map(check, sorted(self.deks)):
                if problem:
                    lost.append((ref, problem))
        self.deks_lost = len(lost)
        for ref, problem in lost[:MAX_VIOLATIONS_SHOWN]:
            self.violation("dek-opens", f"at the end, DEK {ref[0]}/{ref[1]}: {problem}")
        self.leaks = self.scan_for_leaks()

    def scan_for_leaks(self) -> list[Any]:
        index = SecretIndex()
        for dek in self.deks.values():
            index.add(f"DEK {dek.partition}/{dek.dek_id}", dek.secret)
        for label, secret in self.private_keys():
            index.add(label, secret)
        logs = sorted((self.system.state_dir / "logs").glob("*.log"))
        leaks = scan_logs(index, logs)
        for child in self.system.group.children:  # the lines as printed, before the process group's scrubbing
            leaks += scan_lines(index, f"{child.name} (in memory)", child.output_since(0))
        leaks += scan_lines(index, "soak", self.soak_lines)
        self.say(f"scanned {len(logs)} logs for {len(index)} secret windows: {len(leaks)} leaks")
        for leak in leaks[:MAX_VIOLATIONS_SHOWN]:
            self.violation("no-key-material-in-logs", f"{leak.secret} in {leak.log}:{leak.line} as {leak.form}")
        return leaks

    def private_keys(self) -> list[tuple[str, bytes]]:
        """The emulated vault's RSA private keys (d, p, q and the DER), read from its state file: the key material
        that must never reach a log."""
        from cryptography.hazmat.primitives import serialization

        found = []
        directory = self.system.state_dir / "emulators"
        for path in [*directory.glob("*.json"), *directory.glob("*.pem")]:
            with contextlib.suppress(ValueError, OSError):
                for pem in _pems(path.read_text()):
                    key = serialization.load_pem_private_key(pem.encode(), password=None)
                    der = key.private_bytes(
                        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                    )
                    found.append((f"private key in {path.name} (DER)", der))
                    numbers = key.private_numbers()
                    for part in ("d", "p", "q", "private_value"):
                        value = getattr(numbers, part, None)
                        if isinstance(value, int) and value.bit_length() >= 256:
                            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
                            found.append((f"private key in {path.name} ({part})", raw))
        return found

    def azure_time(self) -> dict[str, Any]:
        """What the local cloud's Azure timing did during the run, from the emulators' own counters: RBAC propagation
        windows (each role change until Key Vault applied it) and the consumer checks made at every emulated minute
        inside them, with the minutes a consumer could not use its key; Event Grid deliveries that timed out (30 s)
        and the redeliveries they caused; the consumers' long-running key changes and the writes each received."""
        found: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            rbac = self.cloud.admin("GET", "/rbac/propagation")
            found["propagation"] = {
                "max_seconds": rbac["max_seconds"],
                "windows_checked": rbac["windows"],
                "minute_checks": rbac["minute_checks"],
                "unavailable_minutes": sum(rbac["unavailable"].values()),
                "unavailable_minutes_unsanctioned": self.window_minutes_unsanctioned,
            }
        with contextlib.suppress(Exception):
            grid = self.cloud.admin("GET", "/eventgrid/stats")
            found["eventgrid"] = {
                "deliveries": grid["deliveries"],
                "timeouts": grid["timeouts"],
                "redeliveries_after_timeout": grid["redeliveries_after_timeout"],
            }
        with contextlib.suppress(Exception):
            ops = self.cloud.admin("GET", "/arm/operations")
            statuses = Counter(op["status"] for op in ops["operations"])
            found["long_running"] = {
                "seconds": ops["duration_seconds"],
                "operations": dict(sorted(statuses.items())),
                "writes": {
                    rid.rsplit("/", 1)[-1]: {"accepted": w["accepted"], "refused": w["refused"]}
                    for rid, w in ops["patches"].items()
                },
            }
        return found

    def summary(self, wall: float) -> dict[str, Any]:
        rotations = 0
        with contextlib.suppress(Exception):
            for name in KEYS:
                rotations += len(self.versions(name)) - 1
        expected = sum(self.expected_rotations.values())
        counted = Counter(v.invariant for v in self.violations)
        alerts: Counter[str] = Counter()
        high: list[str] = []  # why each high or critical alert went out: an alert nobody can act on is a defect too
        with contextlib.suppress(Exception):
            for event in self.cloud.admin("GET", "/eventgrid/topic-events")["value"]:
                alerts[event.get("type", "?")] += 1
                data = event.get("data") or {}
                if data.get("severity") in ("high", "critical") and len(high) < MAX_VIOLATIONS_SHOWN:
                    high.append(f"{event.get('type')}: {str(data.get('message', ''))[:300]}")
        azure_time = self.azure_time()
        return {
            "days": self.config.days,
            "seed": self.config.seed,
            "store": "managed-hsm" if self.config.hsm else "key-vault",
            "steps": self.step,
            "rotations": rotations,
            "expected_rotations": expected,
            "extra_versions": max(0, rotations - expected),
            "deks": len(self.deks),
            "shard_keys_key": self.config.shard_keys,
            "shard_keys": len(self.shard_keys.rows(self.inventory.key(self.config.shard_keys)))
            if self.config.shard_keys and getattr(self, "shard_keys", None)
            else 0,
            "deks_lost": getattr(self, "deks_lost", len(self.deks)),
            "unsanctioned_unavailable_steps": self.unavailable_steps,
            "drift_injected": self.drift_injected,
            "drift_remediated": self.drift_remediated,
            "faults": dict(sorted(self.faults.items())),
            "alerts": dict(sorted(alerts.items())),
            "high_alerts": high,
            "invariant_violations": len(self.violations),
            "violations_by_invariant": dict(sorted(counted.items())),
            "key_material_leaks": len(getattr(self, "leaks", [])) if hasattr(self, "leaks") else None,
            "revocation_cycles": len(self.sanctions),
            "revocation": "on" if self.config.revocation else "off (--no-revocation)",
            **azure_time,
            "wall_s": round(wall, 1),
            "phase_s": {k: round(v, 1) for k, v in sorted(self.phase_s.items())},
            "violations": [asdict(v) for v in self.violations[:MAX_VIOLATIONS_SHOWN]],
        }


_PEM = re.compile(r"-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----.+?-----END \1-----", re.S)


def _pems(text: str) -> list[str]:
    """Every PEM private key in a file, also inside JSON strings (their newlines escaped)."""
    return [m.group(0) + "\n" for m in _PEM.finditer(text.replace("\\n", "\n"))]


def parse(argv: list[str] | None = None) -> SoakConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deks", type=int, default=2000)
    parser.add_argument("--step-days", type=float, default=2.0)
    parser.add_argument("--opens-per-step", type=int, default=12)
    parser.add_argument("--fault-rate", type=float, default=0.06)
    guard = parser.add_mutually_exclusive_group()
    guard.add_argument("--revocation", dest="revocation", action="store_true", help="(default) the yearly drill")
    guard.add_argument("--no-revocation", dest="revocation", action="store_false", help="skip the revocation cycle")
    parser.set_defaults(revocation=True)
    parser.add_argument("--keep", type=Path, help="keep the state directory and logs here")
    parser.add_argument("--hsm", action="store_true", help="run on an emulated Managed HSM (no events, local RBAC)")
    parser.add_argument("--shard-keys", metavar="KEY", help="put KEY's dek-table on hierarchy: shard-keys")
    args = parser.parse_args(argv)
    if args.days < 1 or args.deks < 2 or args.step_days <= 0:
        parser.error("--days and --step-days must be positive, --deks at least 2")
    if args.shard_keys is not None and args.shard_keys not in KEYS:
        parser.error(f"--shard-keys must be one of {', '.join(KEYS)}")
    return SoakConfig(
        days=args.days,
        seed=args.seed,
        deks=args.deks,
        step_days=args.step_days,
        opens_per_step=args.opens_per_step,
        fault_rate=args.fault_rate,
        revocation=args.revocation,
        keep=args.keep,
        hsm=args.hsm,
        shard_keys=args.shard_keys,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    summary = Soak(config).run()
    print(json.dumps(summary, sort_keys=True))
    clean = (
        summary["invariant_violations"] == 0
        and summary["deks_lost"] == 0
        and summary["extra_versions"] == 0
        and summary["rotations"] == summary["expected_rotations"]
        and summary["key_material_leaks"] == 0
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
