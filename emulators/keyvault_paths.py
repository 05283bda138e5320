"""Key Vault's keys paths resolved to operations: which endpoint a request asks for and the RBAC data action it needs.

Resolved by hand rather than by aiohttp's router because Key Vault is lenient about trailing slashes and empty
versions (`/keys/{name}/`, `/keys/{name}//unwrapkey`), and the fault middleware needs the same operation names.
Split from emulators.keyvault, which re-exports `Operation` and `resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass

CRYPTO_OPERATIONS = {"wrapkey": "wrapKey", "unwrapkey": "unwrapKey", "encrypt": "encrypt", "decrypt": "decrypt"}


@dataclass(frozen=True)
class Operation:
    name: str  # stable operation name, used by faults and counters (e.g. "unwrapkey")
    action: str  # the RBAC data action it needs, without the Microsoft.KeyVault/vaults/ prefix
    key_name: str | None = None
    version: str | None = None


# (first segment, method, shape) table, where shape is the path after /keys/{name} or /deletedkeys/{name}.
def resolve(method: str, path: str) -> Operation | None:
    """The operation a request asks for, or None when Key Vault has no such endpoint."""
    segments = path.split("/")[1:]
    if len(segments) >= 2 and segments[-1] == "":  # "/keys/", "/keys/{name}/" (get_key asks this way)
        segments = segments[:-1]
    if not segments:
        return None
    root = segments[0].lower()
    method = method.upper()
    if root == "keys":
        if len(segments) == 1:
            return Operation("listkeys", "keys/read") if method == "GET" else None
        name, rest = segments[1], [s.lower() for s in segments[2:]]
        if not rest:
            return {
                "GET": Operation("getkey", "keys/read", name),
                "PATCH": Operation("updatekey", "keys/update/action", name),
                "PUT": Operation("importkey", "keys/import/action", name),
                "DELETE": Operation("deletekey", "keys/delete", name),
            }.get(method)
        if len(rest) == 1:
            word = rest[0]
            simple = {
                ("POST", "create"): Operation("createkey", "keys/create/action", name),
                ("POST", "rotate"): Operation("rotatekey", "keys/rotate/action", name),
                ("GET", "rotationpolicy"): Operation("getrotationpolicy", "keyrotationpolicies/read", name),
                ("PUT", "rotationpolicy"): Operation("setrotationpolicy", "keyrotationpolicies/write", name),
                ("GET", "versions"): Operation("listversions", "keys/read", name),
            }.get((method, word))
            if simple:
                return simple
            if method == "POST" and word in CRYPTO_OPERATIONS:
                return Operation(word, f"keys/{word.removesuffix('key')}/action", name)
            version = segments[2]
            if method == "GET":
                return Operation("getkey", "keys/read", name, version)
            if method == "PATCH":
                return Operation("updatekey", "keys/update/action", name, version)
            return None
        if len(rest) == 2 and method == "POST" and rest[1] in CRYPTO_OPERATIONS:
            return Operation(rest[1], f"keys/{rest[1].removesuffix('key')}/action", name, segments[2] or None)
        return None
    if root == "deletedkeys":
        if len(segments) == 1:
            return Operation("listdeletedkeys", "deletedKeys/read") if method == "GET" else None
        name, rest = segments[1], [s.lower() for s in segments[2:]]
        if not rest:
            return {
                "GET": Operation("getdeletedkey", "deletedKeys/read", name),
                "DELETE": Operation("purgedeletedkey", "deletedKeys/delete", name),
            }.get(method)
        if rest == ["recover"] and method == "POST":
            return Operation("recoverdeletedkey", "deletedKeys/recover/action", name)
    return None
