"""Injected faults, latency and throttling as the unchanged SDK (azure-core's retry policy) experiences them."""

from __future__ import annotations

import os
import statistics
import time

import pytest
from azure.core.exceptions import AzureError, HttpResponseError
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import KeyWrapAlgorithm

from tests.emulators.conftest import OPERATOR
from tests.support.emulators import Emulators

pytestmark = pytest.mark.emulator

ALG = KeyWrapAlgorithm.rsa_oaep_256
VAULT = "kv-cmk-reference"


@pytest.fixture
def wrapped(emu: Emulators, admin_client: KeyClient):
    """(key, dek, wrapped dek) for a fresh key."""
    key = admin_client.create_rsa_key("cmk-faults")
    dek = os.urandom(32)
    return key, dek, emu.crypto_client(key, OPERATOR).wrap_key(ALG, dek).encrypted_key


def statuses(emu: Emulators, operation: str) -> dict[str, int]:
    return emu.counters().get(VAULT, {}).get(operation, {}).get("by_status", {})


def test_429_without_retry_after_is_not_retried_for_post_by_default(emu: Emulators, wrapped) -> None:
    key, _, blob = wrapped
    crypto = emu.crypto_client(key.id, OPERATOR, retry_backoff_factor=0.01)
    crypto.unwrap_key(ALG, blob)  # warm up: challenge and key GET done
    emu.add_fault("429-no-retry-after", operation="unwrapkey", count=1)

    with pytest.raises(HttpResponseError) as caught:
        crypto.unwrap_key(ALG, blob)

    assert caught.value.status_code == 429
    assert caught.value.response.headers.get("Retry-After") is None
    assert caught.value.response.json()["error"]["code"] == "Throttled"
    assert statuses(emu, "unwrapkey").get("429") == 1


def test_429_without_retry_after_succeeds_when_post_is_retryable(emu: Emulators, wrapped) -> None:
    key, dek, blob = wrapped
    crypto = emu.crypto_client(key.id, OPERATOR, retry_backoff_factor=0.01)
    emu.add_fault("429-no-retry-after", operation="unwrapkey", count=2)

    result = crypto.unwrap_key(ALG, blob, retry_on_methods=frozenset({"GET", "POST"}))

    assert result.key == dek
    assert statuses(emu, "unwrapkey").get("429") == 2


def test_429_with_retry_after_is_retried_by_default(emu: Emulators, wrapped) -> None:
    key, dek, blob = wrapped
    crypto = emu.crypto_client(key.id, OPERATOR)
    crypto.unwrap_key(ALG, blob)
    emu.add_fault("429", operation="unwrapkey", count=1, retry_after=1)

    started = time.perf_counter()
    assert crypto.unwrap_key(ALG, blob).key == dek
    assert time.perf_counter() - started >= 0.9  # the client waited as told


def test_503_is_retried_by_azure_core(emu: Emulators, wrapped) -> None:
    key, dek, blob = wrapped
    crypto = emu.crypto_client(key.id, OPERATOR, retry_backoff_factor=0.01)
    emu.add_fault("503", operation="unwrapkey", count=2)

    assert crypto.unwrap_key(ALG, blob).key == dek
    counted = statuses(emu, "unwrapkey")
    assert counted.get("503") == 2 and counted.get("200", 0) >= 1


def test_500_fault_rate_applies_to_the_named_vault_and_operation_only(emu: Emulators, wrapped) -> None:
    key, dek, blob = wrapped
    crypto = emu.crypto_client(key.id, OPERATOR, retry_total=0)
    crypto.unwrap_key(ALG, blob)
    emu.add_fault("500", operation="unwrapkey", vault="another-vault", rate=1.0)
    assert crypto.unwrap_key(ALG, blob).key == dek
    emu.add_fault("500", operation="getkey", rate=1.0)
    assert crypto.unwrap_key(ALG, blob).key == dek

    emu.add_fault("500", operation="unwrapkey", rate=1.0)
    with pytest.raises(HttpResponseError) as caught:
        crypto.unwrap_key(ALG, blob)
    assert caught.value.status_code == 500
    emu.clear_faults()
    assert crypto.unwrap_key(ALG, blob).key == dek


def test_connection_reset_surfaces_as_a_transport_error(emu: Emulators, wrapped) -> None:
    key, dek, blob = wrapped
    crypto = emu.crypto_client(key.id, OPERATOR, retry_backoff_factor=0.01)
    crypto.unwrap_key(ALG, blob)
    emu.add_fault("reset", operation="unwrapkey", count=1)

    with pytest.raises(AzureError) as caught:
        crypto.unwrap_key(ALG, blob)
    assert not isinstance(caught.value, HttpResponseError)  # no HTTP answer at all
    assert statuses(emu, "unwrapkey").get("reset") == 1
    assert crypto.unwrap_key(ALG, blob).key == dek  # the next connection works


def test_added_latency_is_measurable_and_targeted(emu: Emulators, wrapped) -> None:
    key, _, blob = wrapped
    crypto = emu.crypto_client(key.id, OPERATOR)
    crypto.unwrap_key(ALG, blob)

    def median_ms(call, n: int = 5) -> float:
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)

    emu.set_latency(150, operation="unwrapkey")
    slowed = median_ms(lambda: crypto.unwrap_key(ALG, blob))
    with emu.key_client(OPERATOR) as client:
        client.get_key("cmk-faults")
        for _ in range(5):
            client.get_key("cmk-faults")

    # The sleep makes 150 ms a floor, whatever the machine's load; the targeting is read from the emulator's counts,
    # not from a stopwatch, so a busy machine cannot fail it.
    assert slowed >= 150
    counts = emu.counters()[VAULT]
    assert counts["unwrapkey"]["delayed"] == 5
    assert counts["getkey"]["delayed"] == 0


def test_custom_throttle_refuses_without_consuming(emu: Emulators, wrapped) -> None:
    key, dek, blob = wrapped
    crypto = emu.crypto_client(key.id, OPERATOR, retry_total=0)
    crypto.unwrap_key(ALG, blob)
    emu.set_throttle(capacity=2, per_seconds=1)

    assert crypto.unwrap_key(ALG, blob).key == dek
    assert crypto.unwrap_key(ALG, blob).key == dek
    with pytest.raises(HttpResponseError) as caught:
        crypto.unwrap_key(ALG, blob)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    time.sleep(0.6)  # refills at 2 per second: one token back
    assert crypto.unwrap_key(ALG, blob).key == dek

    emu.set_throttle(mode="off")
    for _ in range(5):
        assert crypto.unwrap_key(ALG, blob).key == dek


def test_real_throttle_limits_hsm_key_creation(emu: Emulators, admin_client: KeyClient) -> None:
    """Key Vault allows 10 RSA-HSM creates per vault per 10 s (20 for software keys)."""
    outcomes = []
    started = time.monotonic()
    for i in range(14):
        try:
            admin_client.create_rsa_key(f"hsm-{i}", hardware_protected=True, retry_total=0)
            outcomes.append(200)
        except HttpResponseError as exc:
            outcomes.append(exc.status_code)
    elapsed = time.monotonic() - started

    assert 429 in outcomes
    assert outcomes[:10] == [200] * 10
    assert outcomes.count(200) <= 10 + int(elapsed) + 1  # refill is 1 per second


def test_admin_rejects_bad_fault_specs(emu: Emulators) -> None:
    for body, field in (
        ({"kind": "418"}, "kind"),
        ({"kind": "500", "rate": 2}, "rate"),
        ({"kind": "500", "count": 0}, "count"),
        ({"kind": "500", "rate": 0.5, "count": 1}, "rate"),
    ):
        status, reply = emu.admin("POST", "faults", body)
        assert status == 400
        assert reply["error"]["message"].startswith(field)
    status, reply = emu.admin("POST", "throttle", {"capacity": -1})
    assert status == 400 and "capacity" in reply["error"]["message"]
    status, reply = emu.admin("POST", "latency", {"ms": "fast"})
    assert status == 400 and "ms" in reply["error"]["message"]
