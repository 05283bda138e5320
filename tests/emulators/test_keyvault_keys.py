"""Every Key Vault keys endpoint of the emulator, driven through the unchanged azure-keyvault-keys clients."""

from __future__ import annotations

import os
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import (
    KeyClient,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyType,
)
from azure.keyvault.keys.crypto import KeyWrapAlgorithm

from tests.emulators.conftest import OPERATOR
from tests.support.emulators import Emulators

pytestmark = pytest.mark.emulator

DAY = 86400


def error_code(exc: HttpResponseError) -> tuple[str | None, str | None]:
    """(code, innererror.code) from a Key Vault error response."""
    body = exc.response.json()["error"]
    return body.get("code"), (body.get("innererror") or {}).get("code")


def requests_for(emu: Emulators, operation: str) -> int:
    return emu.counters().get("kv-cmk-reference", {}).get(operation, {}).get("requests", 0)


def test_create_rsa_and_rsa_hsm_keys_with_attributes(emu: Emulators, admin_client: KeyClient) -> None:
    expires = int(time.time()) + 90 * DAY
    key = admin_client.create_rsa_key(
        "cmk-a", size=3072, hardware_protected=True, key_operations=["wrapKey", "unwrapKey"], tags={"svc": "mysql"}
    )
    soft = admin_client.create_rsa_key("cmk-b", size=2048, expires_on=_dt(expires), not_before=_dt(expires - DAY * 100))

    assert key.key_type == KeyType.rsa_hsm
    assert key.id.startswith(emu.vault_url() + "/keys/cmk-a/")
    assert len(key.key.n) == 3072 // 8 and key.key.e == b"\x01\x00\x01"
    assert not hasattr(key.key, "d") or key.key.d is None
    assert key.key_operations == ["wrapKey", "unwrapKey"]
    assert key.properties.tags == {"svc": "mysql"}
    assert key.properties.recoverable_days == 90
    assert key.properties.recovery_level == "Recoverable"  # the default vault has purge protection on
    assert key.properties.exportable is False
    assert key.properties.enabled is True
    assert soft.key_type == KeyType.rsa
    assert int(soft.properties.expires_on.timestamp()) == expires
    assert int(soft.properties.not_before.timestamp()) == expires - DAY * 100


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"size": 1024}, "key_size"), ({"size": 8192}, "key_size")],
)
def test_create_refuses_unsupported_sizes(admin_client: KeyClient, kwargs: dict, field: str) -> None:
    with pytest.raises(HttpResponseError) as caught:
        admin_client.create_rsa_key("bad-size", **kwargs)
    assert caught.value.status_code == 400
    assert error_code(caught.value)[0] == "BadParameter"
    assert field in caught.value.message


def test_create_refuses_other_key_types(admin_client: KeyClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        admin_client.create_ec_key("an-ec-key")
    assert caught.value.status_code == 400
    assert "kty" in caught.value.message


def test_get_latest_and_by_version(admin_client: KeyClient) -> None:
    first = admin_client.create_rsa_key("cmk-get")
    second = admin_client.create_rsa_key("cmk-get")

    assert first.properties.version != second.properties.version
    assert admin_client.get_key("cmk-get").id == second.id
    old = admin_client.get_key("cmk-get", first.properties.version)
    assert old.id == first.id and old.key.n == first.key.n
    with pytest.raises(ResourceNotFoundError) as caught:
        admin_client.get_key("cmk-get", "0" * 32)
    assert error_code(caught.value)[0] == "KeyNotFound"
    with pytest.raises(ResourceNotFoundError):
        admin_client.get_key("no-such-key")


def test_list_keys_pages_with_absolute_next_links(emu: Emulators, admin_client: KeyClient) -> None:
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        admin_client.create_rsa_key(name)
    before = requests_for(emu, "listkeys")

    listed = [k.name for k in admin_client.list_properties_of_keys(max_page_size=2)]

    assert sorted(listed) == names
    assert requests_for(emu, "listkeys") - before == 3  # pages of 2, 2 and 1 (the challenge came earlier)


def test_list_versions_honours_maxresults(emu: Emulators, admin_client: KeyClient) -> None:
    created = [admin_client.create_rsa_key("cmk-versions").properties.version for _ in range(3)]
    before = requests_for(emu, "listversions")

    versions = [p.version for p in admin_client.list_properties_of_key_versions("cmk-versions", max_page_size=1)]

    assert sorted(versions) == sorted(created)
    assert requests_for(emu, "listversions") - before == 3


def test_update_properties_of_one_version(admin_client: KeyClient) -> None:
    key = admin_client.create_rsa_key("cmk-update")
    newer = admin_client.create_rsa_key("cmk-update")
    expires = int(time.time()) + 10 * DAY

    updated = admin_client.update_key_properties(
        "cmk-update",
        key.properties.version,
        enabled=False,
        expires_on=_dt(expires),
        key_operations=["unwrapKey"],
        tags={"state": "retired"},
    )

    assert updated.properties.enabled is False
    assert int(updated.properties.expires_on.timestamp()) == expires
    assert updated.key_operations == ["unwrapKey"]
    assert updated.properties.tags == {"state": "retired"}
    assert admin_client.get_key("cmk-update").properties.enabled is True  # the newer version is untouched
    assert admin_client.get_key("cmk-update").id == newer.id


def test_rotation_policy_round_trip_and_rotate_applies_expiry(emu: Emulators, admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-rot")
    default = admin_client.get_key_rotation_policy("cmk-rot")
    assert [(a.action, a.time_before_expiry) for a in default.lifetime_actions] == [
        (KeyRotationPolicyAction.notify, "P30D")
    ]

    policy = admin_client.update_key_rotation_policy(
        "cmk-rot",
        KeyRotationPolicy(),
        lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_before_expiry="P7D"),
            KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P14D"),
        ],
        expires_in="P60D",
    )
    assert policy.expires_in == "P60D"
    assert admin_client.get_key_rotation_policy("cmk-rot").expires_in == "P60D"

    rotated = admin_client.rotate_key("cmk-rot")
    now = emu.clock()["timestamp"]
    assert admin_client.get_key("cmk-rot").id == rotated.id
    assert abs(rotated.properties.expires_on.timestamp() - (now + 60 * DAY)) < 30


@pytest.mark.parametrize(
    ("actions", "expires_in", "field"),
    [
        ([("rotate", "P6D", None)], "P90D", "timeAfterCreate"),
        ([("rotate", None, "P6D")], "P90D", "timeBeforeExpiry"),
        ([("rotate", "P30D", None)], "P27D", "expiryTime"),
        ([("notify", "P30D", None)], "P90D", "timeAfterCreate"),
        ([("rotate", None, "P7D")], None, "expiryTime"),
    ],
)
def test_rotation_policy_minimums_are_enforced(
    admin_client: KeyClient, actions: list[tuple[str, str | None, str | None]], expires_in: str | None, field: str
) -> None:
    admin_client.create_rsa_key("cmk-min")
    lifetime = [
        KeyRotationLifetimeAction(KeyRotationPolicyAction(kind.capitalize()), time_after_create=a, time_before_expiry=b)
        for kind, a, b in actions
    ]
    with pytest.raises(HttpResponseError) as caught:
        admin_client.update_key_rotation_policy(
            "cmk-min", KeyRotationPolicy(), lifetime_actions=lifetime, expires_in=expires_in
        )
    assert caught.value.status_code == 400
    assert error_code(caught.value)[0] == "BadParameter"
    assert field in caught.value.message


def test_local_wrap_remote_unwrap(emu: Emulators, admin_client: KeyClient) -> None:
    key = admin_client.create_rsa_key("cmk-wrap", hardware_protected=True)
    dek = os.urandom(32)
    crypto = emu.crypto_client(key, OPERATOR)
    wraps_before = requests_for(emu, "wrapkey")

    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)  # local: public key from the KeyVaultKey
    unwrapped = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key)  # remote

    assert requests_for(emu, "wrapkey") == wraps_before
    assert wrapped.key_id == key.id
    assert unwrapped.key == dek


@pytest.mark.parametrize("algorithm", [KeyWrapAlgorithm.rsa_oaep_256, KeyWrapAlgorithm.rsa_oaep])
def test_remote_wrap_by_key_id_and_versionless_unwrap(
    emu: Emulators, admin_client: KeyClient, algorithm: KeyWrapAlgorithm
) -> None:
    key = admin_client.create_rsa_key("cmk-remote", key_operations=["wrapKey", "unwrapKey"])
    dek = os.urandom(32)
    by_id = emu.crypto_client(key.id, OPERATOR)
    versionless = emu.crypto_client(f"{emu.vault_url()}/keys/cmk-remote", OPERATOR)

    wrapped = by_id.wrap_key(algorithm, dek)
    assert wrapped.key_id == key.id
    assert versionless.unwrap_key(algorithm, wrapped.encrypted_key).key == dek
    assert by_id.unwrap_key(algorithm, wrapped.encrypted_key).key == dek


def test_unwrap_refused_on_disabled_version_but_wrap_allowed(emu: Emulators, admin_client: KeyClient) -> None:
    key = admin_client.create_rsa_key("cmk-disabled")
    remote = emu.crypto_client(key.id, OPERATOR)
    wrapped = remote.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, os.urandom(32))
    admin_client.update_key_properties("cmk-disabled", key.properties.version, enabled=False)

    with pytest.raises(HttpResponseError) as caught:
        remote.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key)
    assert caught.value.status_code == 403
    assert error_code(caught.value) == ("Forbidden", "KeyDisabled")
    assert "unwrapKey" in caught.value.message
    assert remote.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, os.urandom(32)).key_id == key.id


def test_expired_version_still_unwraps_but_refuses_wrap(emu: Emulators, admin_client: KeyClient) -> None:
    expires = int(time.time()) + 30 * DAY
    key = admin_client.create_rsa_key("cmk-expiring", expires_on=_dt(expires))
    dek = os.urandom(32)
    remote = emu.crypto_client(key.id, OPERATOR)
    wrapped = remote.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)

    emu.advance_clock(iso="P31D")

    assert remote.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek
    # The SDK wraps locally and checks exp against the real clock, so make it wrap remotely: a client whose key GET
    # fails (injected 500) falls back to the service.
    emu.add_fault("500", operation="getkey", count=1)
    service_side = emu.crypto_client(key.id, OPERATOR, retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        service_side.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
    assert caught.value.status_code == 403
    assert error_code(caught.value) == ("Forbidden", "KeyExpired")


def test_unwrap_of_garbage_is_a_bad_parameter(emu: Emulators, admin_client: KeyClient) -> None:
    key = admin_client.create_rsa_key("cmk-garbage")
    with pytest.raises(HttpResponseError) as caught:
        emu.crypto_client(key.id, OPERATOR).unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, os.urandom(256))
    assert caught.value.status_code == 400
    assert error_code(caught.value)[0] == "BadParameter"


def test_soft_delete_recover_purge(admin_client: KeyClient) -> None:
    key = admin_client.create_rsa_key("cmk-del")

    deleted = admin_client.begin_delete_key("cmk-del").result()
    assert deleted.recovery_id.endswith("/deletedkeys/cmk-del")
    assert deleted.id == key.id
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert (deleted.scheduled_purge_date - deleted.deleted_date).days == 90
    with pytest.raises(ResourceNotFoundError):
        admin_client.get_key("cmk-del")
    assert admin_client.get_deleted_key("cmk-del").id == key.id
    assert [d.name for d in admin_client.list_deleted_keys()] == ["cmk-del"]

    with pytest.raises(ResourceExistsError) as caught:
        admin_client.create_rsa_key("cmk-del")
    assert caught.value.status_code == 409

    recovered = admin_client.begin_recover_deleted_key("cmk-del").result()
    assert recovered.id == key.id
    assert admin_client.get_key("cmk-del").key.n == key.key.n

    admin_client.begin_delete_key("cmk-del").result()
    with pytest.raises(HttpResponseError) as refused:  # the default vault has purge protection, as CMK requires
        admin_client.purge_deleted_key("cmk-del")
    assert refused.value.status_code == 403 and "purge protection is enabled" in refused.value.message
    assert admin_client.get_deleted_key("cmk-del").id == key.id  # still recoverable


def test_older_api_versions_are_accepted(emu: Emulators, admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-api")
    for version in ("7.4", "7.5", "7.6"):
        with emu.key_client(OPERATOR, api_version=version) as client:
            assert client.get_key("cmk-api").name == "cmk-api"


def _dt(timestamp: int):
    import datetime as dt

    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
