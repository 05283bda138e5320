"""The Key Vault clients' shared pool and call counter (shared.azure.transport): sized to the re-wrap's real
concurrency, and counting each attempt by operation and status, 429s separately, without a key name in sight."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from functions.rewrap.worker import RESERVE_CHUNK
from shared.azure.transport import REWRAP_CONCURRENCY, call_counter, keyvault_operation, pooled_transport
from shared.telemetry import names
from tests.fakes.telemetry import RecordingTelemetry

ROOT = Path(__file__).resolve().parents[3]


def test_the_pool_is_as_large_as_the_pages_and_dek_calls_the_host_runs_at_once():
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    pages = queues["batchSize"] + queues["newBatchThreshold"]
    assert pages * RESERVE_CHUNK == REWRAP_CONCURRENCY
    transport = pooled_transport(REWRAP_CONCURRENCY)
    adapter = transport.session.get_adapter("https://kv.vault.azure.net/")
    assert adapter._pool_maxsize == REWRAP_CONCURRENCY  # urllib3 keeps this many connections per host


def test_operations_are_named_without_key_names_or_versions():
    assert keyvault_operation("POST", "/keys/mysql-encryption-key/0a1b/unwrapkey") == "unwrapKey"
    assert keyvault_operation("POST", "/keys/k/rotate") == "rotateKey"
    assert keyvault_operation("GET", "/keys/k/rotationpolicy") == "rotationPolicy:GET"
    assert keyvault_operation("GET", "/keys/k/versions") == "listVersions"
    assert keyvault_operation("GET", "/keys/k/0a1b") == "key:GET"
    assert keyvault_operation("PATCH", "/keys/k/0a1b") == "key:PATCH"
    assert keyvault_operation("GET", "/secrets/x") == "other"


def _response(method: str, url: str, status: int):
    return SimpleNamespace(
        http_request=SimpleNamespace(method=method, url=url), http_response=SimpleNamespace(status_code=status)
    )


def test_every_attempt_is_counted_and_429s_also_as_throttled():
    telemetry = RecordingTelemetry()
    hook = call_counter(telemetry)
    unwrap = "https://kv.vault.azure.net/keys/k/v1/unwrapkey?api-version=7.5"
    for status in (429, 429, 200):
        hook(_response("POST", unwrap, status))
    hook(SimpleNamespace())  # anything unreadable is skipped, never raised
    calls = [(m.dimensions["status"], m.value) for m in telemetry.metrics(names.KEYVAULT_CALLS)]
    assert calls == [("429", 1), ("429", 1), ("200", 1)]
    assert [m.dimensions for m in telemetry.metrics(names.KEYVAULT_THROTTLED)] == [{"operation": "unwrapKey"}] * 2
