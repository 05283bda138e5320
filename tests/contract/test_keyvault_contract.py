"""One behaviour, two backends: the in-memory FakeKeyVault and the AzureKeyVault adapter talking to the Key Vault
emulator over HTTPS through the unchanged SDK. When they disagree this fails, so the fake cannot drift."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest

from shared.errors import InvalidInput, KeyDisabled, KeyNotFound, UnwrapFailed
from shared.model import KeyRef, LifetimeAction, RotationActionType, RotationPolicy
from shared.ports import KeyVault
from tests.fakes.keyvault import FakeKeyVault

OPS = ("wrapKey", "unwrapKey")


@pytest.fixture(params=["fake", "emulator"])
def backend(request) -> tuple[KeyVault, str]:
    if request.param == "fake":
        return FakeKeyVault(), "https://kv-contract.vault.azure.net"
    cloud = request.getfixturevalue("cloud_with_app_identity")
    return cloud.app_keyvault(), cloud.vault_url


@pytest.fixture
def key(backend) -> KeyRef:
    _, vault_url = backend
    return KeyRef(vault_url, f"contract-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def vault(backend) -> KeyVault:
    return backend[0]


def test_create_then_get_latest_and_by_version(vault, key):
    created = vault.create_key(key, kty="RSA-HSM", size=2048, ops=OPS, tags={"service": "aks"})
    latest = vault.get_key(key)
    assert latest == created
    assert (latest.kty, latest.size, set(latest.ops), latest.enabled) == ("RSA-HSM", 2048, set(OPS), True)
    assert latest.tags == {"service": "aks"}
    assert vault.get_key(key, created.version).version == created.version
    assert latest.key_id == key.version_id(created.version)


def test_missing_key_and_missing_version_are_key_not_found(vault, key):
    with pytest.raises(KeyNotFound):
        vault.get_key(key)
    vault.create_key(key, kty="RSA", size=2048, ops=OPS)
    with pytest.raises(KeyNotFound):
        vault.get_key(key, "0" * 32)
    with pytest.raises(KeyNotFound):
        vault.rotate_key(KeyRef(key.vault_url, key.name + "-absent"))


def test_rotate_makes_a_new_latest_version_with_same_shape(vault, key):
    first = vault.create_key(key, kty="RSA-HSM", size=3072, ops=OPS)
    second = vault.rotate_key(key)
    assert second.version != first.version
    assert vault.get_key(key).version == second.version
    assert (second.kty, second.size, set(second.ops)) == ("RSA-HSM", 3072, set(OPS))
    assert {v.version for v in vault.list_versions(key)} == {first.version, second.version}


def test_wrap_unwrap_round_trip_is_bound_to_the_version(vault, key):
    v1 = vault.create_key(key, kty="RSA-HSM", size=2048, ops=OPS)
    v2 = vault.rotate_key(key)
    dek = os.urandom(32)
    wrapped = vault.wrap_key(key, v1.version, dek)
    assert wrapped.key_id == v1.key_id and wrapped.algorithm == "RSA-OAEP-256"
    assert dek not in wrapped.wrapped
    assert vault.unwrap_key(v1.key_id, wrapped.wrapped) == dek
    with pytest.raises(UnwrapFailed):
        vault.unwrap_key(v2.key_id, wrapped.wrapped)


def test_disabled_version_refuses_unwrap_but_stays_listed(vault, key):
    v1 = vault.create_key(key, kty="RSA-HSM", size=2048, ops=OPS)
    wrapped = vault.wrap_key(key, v1.version, b"k" * 32)
    updated = vault.update_version(key, v1.version, enabled=False, tags={"state": "retired"})
    assert updated.enabled is False and updated.tags == {"state": "retired"}
    with pytest.raises(KeyDisabled):
        vault.unwrap_key(v1.key_id, wrapped.wrapped)
    vault.update_version(key, v1.version, enabled=True)
    assert vault.unwrap_key(v1.key_id, wrapped.wrapped) == b"k" * 32


def test_key_without_policy_reports_no_automatic_rotation(vault, key):
    vault.create_key(key, kty="RSA-HSM", size=2048, ops=OPS)
    policy = vault.get_rotation_policy(key)
    actions = policy.actions if policy else ()
    assert not [a for a in actions if a.action == RotationActionType.ROTATE]


def test_rotation_policy_round_trip_and_rotate_applies_its_expiry(vault, key):
    vault.create_key(key, kty="RSA-HSM", size=2048, ops=OPS)
    policy = RotationPolicy(
        "P90D",
        (
            LifetimeAction(RotationActionType.ROTATE, "P60D", None),
            LifetimeAction(RotationActionType.NOTIFY, None, "P30D"),
        ),
    )
    vault.set_rotation_policy(key, policy)
    got = vault.get_rotation_policy(key)
    assert got.expires_in == "P90D"
    assert {(a.action, a.time_after_create, a.time_before_expiry) for a in got.actions} == {
        (RotationActionType.ROTATE, "P60D", None),
        (RotationActionType.NOTIFY, None, "P30D"),
    }
    rotated = vault.rotate_key(key)
    assert rotated.expires is not None and rotated.created is not None
    assert abs((rotated.expires - rotated.created) - timedelta(days=90)) < timedelta(minutes=5)


@pytest.mark.parametrize(
    "policy",
    [
        RotationPolicy("P7D", (LifetimeAction(RotationActionType.ROTATE, "P3D", None),)),
        RotationPolicy("P90D", (LifetimeAction(RotationActionType.ROTATE, "P2D", None),)),
        RotationPolicy("P90D", (LifetimeAction(RotationActionType.ROTATE, None, "P3D"),)),
    ],
    ids=["expiry-under-28-days", "rotate-under-7-days-after-create", "rotate-under-7-days-before-expiry"],
)
def test_rotation_policy_below_minimums_is_refused(vault, key, policy):
    vault.create_key(key, kty="RSA-HSM", size=2048, ops=OPS)
    with pytest.raises(InvalidInput):
        vault.set_rotation_policy(key, policy)


def test_policy_saved_without_notify_gets_the_default_notify_thirty_days_before_expiry(vault, key):
    vault.create_key(key, kty="RSA-HSM", size=2048, ops=OPS)
    rotate = LifetimeAction(RotationActionType.ROTATE, "P60D", None)
    saved = vault.set_rotation_policy(key, RotationPolicy("P90D", (rotate,)))
    expected = [rotate, LifetimeAction(RotationActionType.NOTIFY, None, "P30D")]
    assert list(saved.actions) == expected
    assert list(vault.get_rotation_policy(key).actions) == expected


def test_versions_are_listed_in_version_id_order_not_creation_order(vault, key):
    created = [vault.create_key(key, kty="RSA", size=2048, ops=OPS).version]
    created += [vault.rotate_key(key).version for _ in range(4)]
    assert [v.version for v in vault.list_versions(key)] == sorted(created)
