"""Crash safety of the re-wrap, against the emulated Key Vault and Azurite: worker processes killed with SIGKILL at
random points while re-wrapping 2,000 DEKs, 20 times; then four workers finish together on the same shards (every
shard's message delivered twice). Every DEK must open to its original plaintext, checked against the record this
test kept, and sit on the new version: DEKs lost = 0 of 2,000."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.rewrap.messages import RewrapMessage
from shared.envelope.deks import key_check_value
from shared.envelope.sharding import all_shards, shard_of
from shared.model import WrappedDek
from tests.support.azurite import start_azurite
from tests.support.deployment import Deployment

ROOT = Path(__file__).resolve().parents[2]
DEKS = 2000
TRIALS = 20
SHARDS = 16


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-crash"))
    try:
        yield running
    finally:
        running.stop()


def _start_worker(config: Path, log: Path) -> subprocess.Popen:
    from localrun.processes import spawn  # ended with pytest, however pytest ends (tests/conftest.py)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = spawn(
        [sys.executable, "-m", "tests.support.rewrap_process", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("ab"),
        text=True,
    )
    assert process.stdout.readline().strip() == "ready", log.read_text()
    return process


def test_workers_killed_at_random_points_lose_no_dek(cloud_with_app_identity, azurite, tmp_path):
    from shared.azure.dekstore import TableDekStore
    from shared.azure.queue import StorageWorkQueue
    from shared.azure.tables import LazyTable, table_client

    suffix = uuid.uuid4().hex[:8]
    tables = {name: f"{name}{suffix}" for name in ("deks", "claims", "audit", "budget")}
    deployment = Deployment(cloud_with_app_identity, {"CMK_DEK_TABLE": tables["deks"]})
    managed = deployment.key("mysql-encryption-key")
    prefix = next(c for c in managed.consumers if c.kind.value == "dek-table").options["partition_prefix"]
    connection = azurite.connection_string
    store = TableDekStore(LazyTable(table_client(tables["deks"], connection_string=connection)))
    vault = deployment.vault

    old = vault.get_key(managed.ref)
    kept: dict[tuple[str, str], bytes] = {}
    for i in range(DEKS):
        dek, dek_id = os.urandom(32), f"dek-{i:05d}"
        partition = shard_of(dek_id, prefix, SHARDS)
        wrapped = vault.wrap_key(managed.ref, old.version, dek)  # local: the public key
        store.add(
            WrappedDek(partition, dek_id, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, key_check_value(dek))
        )
        kept[(partition, dek_id)] = dek
    new = vault.rotate_key(managed.ref)

    queue_name = f"rewrap{suffix}"
    queue = StorageWorkQueue(connection, queue_name)
    for partition in all_shards(prefix, SHARDS):
        queue.send(RewrapMessage(managed.name, new.key_id, partition).to_json())
    config = tmp_path / "worker.json"
    config.write_text(
        json.dumps(
            {
                "connection": connection,
                "queue": queue_name,
                "tables": tables,
                "vault": {
                    "ca": cloud_with_app_identity.emulators.ca_cert,
                    "tenant": cloud_with_app_identity.emulators.tenant_id,
                    "principal": cloud_with_app_identity.app_principal,
                },
                "inventory": {"document": deployment.document, "variables": deployment.variables},
                "idle_exit_seconds": 14,
                "visibility_timeout": 2,
            }
        )
    )
    log = tmp_path / "workers.log"
    rng = random.Random(20261201)

    def opens(partition: str, dek_id: str) -> bool:
        entity = store.get(partition, dek_id)
        return vault.unwrap_key(entity.key_id, entity.wrapped, entity.algorithm) == kept[(partition, dek_id)]

    for _trial in range(TRIALS):
        worker = _start_worker(config, log)
        time.sleep(rng.uniform(0.05, 0.6))
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        sample = rng.sample(sorted(kept), 40)
        assert all(opens(p, d) for p, d in sample)  # at every kill point, what was written still opens

    for partition in all_shards(prefix, SHARDS):  # every shard's message twice: workers meet on the same shards
        queue.send(RewrapMessage(managed.name, new.key_id, partition).to_json())
    finishers = [_start_worker(config, log) for _ in range(4)]
    for worker in finishers:
        assert worker.wait(240) == 0, log.read_text()[-4000:]

    lost = [(p, d) for (p, d) in kept if not opens(p, d)]
    behind = [(p, d) for (p, d) in kept if store.get(p, d).key_id != new.key_id]
    print(f"\nre-wrap crash safety: {TRIALS} SIGKILLs, DEKs lost = {len(lost)} of {DEKS}, left behind = {len(behind)}")
    assert lost == [] and behind == []
