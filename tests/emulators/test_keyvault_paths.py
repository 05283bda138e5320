"""How request paths map to Key Vault operations and RBAC data actions (no process)."""

from __future__ import annotations

import pytest

from emulators.keyvault_paths import resolve


@pytest.mark.parametrize(
    ("method", "path", "operation", "action", "key", "version"),
    [
        ("GET", "/keys", "listkeys", "keys/read", None, None),
        ("GET", "/keys/", "listkeys", "keys/read", None, None),
        ("GET", "/keys/k1/", "getkey", "keys/read", "k1", None),
        ("GET", "/keys/k1", "getkey", "keys/read", "k1", None),
        ("GET", "/keys/k1/abc", "getkey", "keys/read", "k1", "abc"),
        ("PATCH", "/keys/k1/abc", "updatekey", "keys/update/action", "k1", "abc"),
        ("PATCH", "/keys/k1/", "updatekey", "keys/update/action", "k1", None),
        ("PUT", "/keys/k1", "importkey", "keys/import/action", "k1", None),
        ("POST", "/keys/k1/create", "createkey", "keys/create/action", "k1", None),
        ("POST", "/keys/k1/rotate", "rotatekey", "keys/rotate/action", "k1", None),
        ("GET", "/keys/k1/rotationpolicy", "getrotationpolicy", "keyrotationpolicies/read", "k1", None),
        ("PUT", "/keys/k1/rotationpolicy", "setrotationpolicy", "keyrotationpolicies/write", "k1", None),
        ("GET", "/keys/k1/versions", "listversions", "keys/read", "k1", None),
        ("POST", "/keys/k1/abc/wrapkey", "wrapkey", "keys/wrap/action", "k1", "abc"),
        ("POST", "/keys/k1/abc/unwrapKey", "unwrapkey", "keys/unwrap/action", "k1", "abc"),
        ("POST", "/keys/k1//unwrapkey", "unwrapkey", "keys/unwrap/action", "k1", None),
        ("POST", "/keys/k1/unwrapkey", "unwrapkey", "keys/unwrap/action", "k1", None),
        ("POST", "/keys/k1/abc/decrypt", "decrypt", "keys/decrypt/action", "k1", "abc"),
        ("DELETE", "/keys/k1", "deletekey", "keys/delete", "k1", None),
        ("GET", "/deletedkeys", "listdeletedkeys", "deletedKeys/read", None, None),
        ("GET", "/deletedkeys/k1", "getdeletedkey", "deletedKeys/read", "k1", None),
        ("POST", "/deletedkeys/k1/recover", "recoverdeletedkey", "deletedKeys/recover/action", "k1", None),
        ("DELETE", "/deletedkeys/k1", "purgedeletedkey", "deletedKeys/delete", "k1", None),
    ],
)
def test_known_paths(method: str, path: str, operation: str, action: str, key: str | None, version: str | None):
    resolved = resolve(method, path)
    assert resolved is not None
    assert (resolved.name, resolved.action, resolved.key_name, resolved.version) == (operation, action, key, version)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("POST", "/keys"), ("GET", "/secrets/s1"), ("PUT", "/keys/k1/abc"), ("GET", "/keys/k1/abc/def")],
)
def test_unknown_paths(method: str, path: str) -> None:
    assert resolve(method, path) is None
