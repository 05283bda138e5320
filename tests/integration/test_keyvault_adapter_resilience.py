"""The Key Vault adapter under the faults Key Vault really produces, injected by the emulator, seen through the SDK.

azure-core alone does not retry a POST answered 429 without Retry-After; wrap/unwrap/rotate are POSTs. The adapter's
retry policy must, and must still give up with a clear error when the vault keeps refusing."""

from __future__ import annotations

import os
import uuid

import pytest

from shared.azure.keyvault import RetryIncludingPost, default_retry_policy
from shared.errors import ServiceUnavailable, Throttled
from shared.model import KeyRef


@pytest.fixture
def keyed(cloud_with_app_identity):
    cloud = cloud_with_app_identity
    # The production policy class with shorter back-off, so giving up takes a second, not half a minute.
    vault = cloud.app_keyvault(retry_policy=RetryIncludingPost(retry_total=3, retry_backoff_factor=0.1))
    key = KeyRef(cloud.vault_url, f"resilience-{uuid.uuid4().hex[:10]}")
    version = vault.create_key(key, kty="RSA-HSM", size=2048, ops=("wrapKey", "unwrapKey"))
    wrapped = vault.wrap_key(key, version.version, b"d" * 32)
    yield cloud, vault, version, wrapped
    cloud.emulators.clear_faults()
    vault.close()


def _unwrap_statuses(cloud) -> dict[str, int]:
    """How the emulated vault answered unwrapkey calls so far, by HTTP status."""
    counters = cloud.emulators.counters()
    vault = next(iter(counters.values())) if "counters" not in counters else next(iter(counters["counters"].values()))
    return dict(vault.get("unwrapkey", {}).get("by_status", {}))


@pytest.mark.parametrize(("kind", "status"), [("429-no-retry-after", "429"), ("429", "429"), ("503", "503")])
def test_unwrap_survives_transient_refusals(keyed, kind, status):
    cloud, vault, version, wrapped = keyed
    before = _unwrap_statuses(cloud)
    cloud.emulators.add_fault(kind, operation="unwrapkey", count=2)
    assert vault.unwrap_key(version.key_id, wrapped.wrapped) == b"d" * 32
    after = _unwrap_statuses(cloud)
    assert after.get(status, 0) - before.get(status, 0) == 2  # both refusals were seen, and retried past
    assert after.get("200", 0) - before.get("200", 0) == 1


def test_persistent_throttling_ends_in_a_typed_error(keyed):
    cloud, vault, version, wrapped = keyed
    cloud.emulators.add_fault("429-no-retry-after", operation="unwrapkey", rate=1.0)
    with pytest.raises(Throttled):
        vault.unwrap_key(version.key_id, wrapped.wrapped)


def test_persistent_outage_ends_in_service_unavailable(keyed):
    cloud, vault, version, wrapped = keyed
    cloud.emulators.add_fault("503", operation="unwrapkey", rate=1.0)
    with pytest.raises(ServiceUnavailable):
        vault.unwrap_key(version.key_id, wrapped.wrapped)


def test_wrap_is_local_and_unaffected_by_vault_faults(keyed):
    cloud, vault, version, _ = keyed
    cloud.emulators.add_fault("503", rate=1.0)
    dek = os.urandom(32)
    wrapped = vault.wrap_key(KeyRef(cloud.vault_url, version.ref.name), version.version, dek)
    cloud.emulators.clear_faults()
    assert vault.unwrap_key(version.key_id, wrapped.wrapped) == dek


def test_default_policy_retries_posts_with_exponential_backoff():
    settings = default_retry_policy().configure_retries({})
    assert {"POST", "PATCH", "GET"} <= set(settings["methods"])
    assert settings["total"] >= 5 and settings["backoff"] == 1.0 and settings["max_backoff"] == 16
