"""Emulated consumers that really use their keys: the MySQL flexible servers and disk encryption sets held by ARM.

A real server or disk encryption set keeps a data encryption key (DEK) of its own, wrapped by the customer-managed
key version it points at, and must unwrap it, as its own identity, to serve data. Pointing at a version only matters
if that is observable: so each emulated consumer holds a random DEK (never logged, never persisted, never returned),
wrapped under its version, and unwraps it through the Key Vault emulator's own authorizer and store whenever it is
changed (a PUT or PATCH: it wraps its DEK under the new version first, as a real server does, then proves it can
unwrap it) and whenever the clock moves (the admin API's hook and the lifecycle tick).

When it cannot (identity without the role, version disabled, key or vault deleted, identity deleted) its state says
so, in Azure's shape: a MySQL server goes `properties.state: "Inaccessible"` with
`dataEncryption.primaryEncryptionKeyStatus: "Invalid"` (and, the emulator's choice since Azure gives the reason only
in the portal and Resource Health, `properties.stateReason`); a disk encryption set carries
`properties.autoKeyRotationError: {code, message}`. Both recover (Ready / no error) once they can unwrap again. An
expired version still unwraps (Key Vault allows unwrap after exp), so expiry alone locks nobody out.

A disk encryption set with `rotationToLatestKeyVersionEnabled` moves itself to the key's newest version once that
version is `follow_delay_seconds` old on the emulated clock (Azure: within an hour), keeping the old one in
`previousKeys`.

`history()` counts, per consumer, the checks that found it available and unavailable, so a test can assert that a
consumer "stayed available throughout" a rotation.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from emulators.arm_resources import DISK_ENCRYPTION_SETS, MYSQL_SERVERS
from emulators.keyvault import Operation, VaultService
from emulators.keyvault_store import KeyVaultError

WRAP_ALGORITHM = "RSA-OAEP-256"
FOLLOW_DELAY_SECONDS = 30 * 60  # inside Azure's "within an hour"
_KEY_URL = re.compile(r"(?P<base>https://[^/]+)/keys/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?/?", re.I)


class ResourceHost(Protocol):
    """ARM's side (emulators.arm.ArmState): read consumer documents and set their read-only properties."""

    def resource(self, resource_id: str) -> dict[str, Any] | None: ...
    def resources_of_type(self, resource_type: str) -> list[dict[str, Any]]: ...
    def set_properties(self, resource_id: str, changes: dict[str, Any]) -> None: ...


class ConsumerUnavailable(Exception):
    """Why a consumer cannot use its key: an Azure-style error code and message (no key material)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class HeldDek:
    """What a running server holds: its DEK wrapped under one version, and the plaintext in memory only."""

    key_url: str
    wrapped: bytes = field(repr=False)
    check: bytes = field(repr=False)  # a digest of the plaintext, to know an unwrap gave the DEK back
    plaintext: bytes | None = field(default=None, repr=False)


@dataclass
class History:
    available: int = 0
    unavailable: int = 0
    last_error: str | None = None
    transitions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "available_checks": self.available,
            "unavailable_checks": self.unavailable,
            "last_error": self.last_error,
            "transitions": copy.deepcopy(self.transitions),
        }


def _digest(plaintext: bytes) -> bytes:
    return hashlib.sha256(b"consumer-dek-check" + plaintext).digest()


def _short(exc: KeyVaultError) -> str:
    """Key Vault's message, first line (its RBAC denial runs over several lines)."""
    return exc.message.split("\r\n")[0].strip()


class ConsumerKeys:
    """Every consumer's DEK and availability; driven by ARM writes and the clock."""

    def __init__(
        self,
        arm: ResourceHost,
        services: dict[str, VaultService],
        *,
        follow_delay_seconds: float = FOLLOW_DELAY_SECONDS,
    ) -> None:
        self._arm = arm
        self._services = services
        self.follow_delay_seconds = follow_delay_seconds
        self._deks: dict[str, HeldDek] = {}
        self._history: dict[str, History] = {}

    # ---- driving ------------------------------------------------------------------------------------------
    def on_write(self, resource_id: str, resource_type: str) -> None:
        """ARM's hook after a PUT or PATCH: a changed consumer proves at once that it can use its (new) key."""
        if resource_type.lower() in (MYSQL_SERVERS, DISK_ENCRYPTION_SETS):
            self.check(resource_id)

    def on_delete(self, resource_id: str) -> None:
        self._deks.pop(resource_id.lower(), None)

    def check_all(self) -> int:
        """One pass over every consumer (after a clock move, and on the lifecycle tick); how many were checked."""
        checked = 0
        for resource_type in (MYSQL_SERVERS, DISK_ENCRYPTION_SETS):
            for document in self._arm.resources_of_type(resource_type):
                self.check(document["id"])
                checked += 1
        return checked

    def history(self) -> dict[str, dict[str, Any]]:
        return {rid: h.to_json() for rid, h in self._history.items()}

    def reset(self) -> None:
        self._deks.clear()
        self._history.clear()

    def clear_history(self) -> None:
        self._history.clear()

    # ---- one consumer -------------------------------------------------------------------------------------
    def check(self, resource_id: str) -> bool:
        document = self._arm.resource(resource_id)
        if document is None:
            return False
        resource_type = document["type"].lower()
        props = document.get("properties", {})
        if resource_type == DISK_ENCRYPTION_SETS and props.get("rotationToLatestKeyVersionEnabled"):
            self._follow_latest(document)
            document = self._arm.resource(resource_id) or document
            props = document.get("properties", {})
        if resource_type == MYSQL_SERVERS:
            encryption = props.get("dataEncryption") or {}
            if str(encryption.get("type", "")).lower() != "azurekeyvault":
                return True  # service-managed keys: nothing of the customer's to lose
            key_url = encryption.get("primaryKeyURI")
            identity_id = encryption.get("primaryUserAssignedIdentityId")
        else:
            key_url = (props.get("activeKey") or {}).get("keyUrl")
            identity_id = None
        try:
            principal = self._principal(document, identity_id)
            self._use_key(document["id"], principal, str(key_url or ""))
        except ConsumerUnavailable as problem:
            self._record(document, problem)
            return False
        self._record(document, None)
        return True

    def _principal(self, document: dict[str, Any], identity_id: str | None) -> str:
        """The principal the consumer calls Key Vault as: its user-assigned identity's (looked up in ARM, so
        deleting the identity locks the consumer out, as in Azure), else its system-assigned one."""
        identity = document.get("identity") or {}
        assigned = identity.get("userAssignedIdentities") or {}
        candidates = [identity_id] if identity_id else list(assigned)
        for candidate in candidates:
            found = self._arm.resource(candidate)
            if found is not None and found.get("properties", {}).get("principalId"):
                return str(found["properties"]["principalId"])
        if not candidates and identity.get("principalId"):
            return str(identity["principalId"])
        raise ConsumerUnavailable(
            "IdentityNotFound",
            f"The managed identity {identity_id or '(none)'} the resource uses to reach its key does not exist.",
        )

    def _service(self, key_url: str) -> tuple[VaultService, str, str | None]:
        match = _KEY_URL.fullmatch(key_url.strip())
        if not match:
            raise ConsumerUnavailable("InvalidKeyUrl", f"Not a Key Vault key URL ({key_url!r}).")
        base = match.group("base").lower()
        service = next((s for s in self._services.values() if s.store.url.lower() == base), None)
        if service is None or self._arm.resource(service.store.resource_id) is None:
            raise ConsumerUnavailable("KeyVaultNotFound", f"The key vault {match.group('base')} cannot be reached.")
        return service, match.group("name"), match.group("version") or None

    def _as_identity(
        self, principal: str, key_url: str, operation: str, value: bytes
    ) -> tuple[bytes, str]:  # (result, versioned kid)
        service, name, version = self._service(key_url)
        action = {"wrapkey": "keys/wrap/action", "unwrapkey": "keys/unwrap/action"}[operation]
        try:
            service.authorize(principal, Operation(operation, action, name, version))
            if operation == "wrapkey":
                key, used, result = service.store.encrypt(name, version, WRAP_ALGORITHM, value, operation="wrapKey")
            else:
                key, used, result = service.store.decrypt(name, version, WRAP_ALGORITHM, value, operation="unwrapKey")
        except KeyVaultError as exc:
            raise ConsumerUnavailable(exc.inner or exc.code, f"{operation} of {key_url}: {_short(exc)}") from None
        return result, service.store.key_id(key.name, used.version)

    def _use_key(self, resource_id: str, principal: str, key_url: str) -> None:
        """Re-wrap the DEK under `key_url` when it moved, then unwrap it there: the proof the consumer can work."""
        held = self._deks.get(resource_id.lower())
        if held is None or held.key_url.lower() != key_url.lower():
            plaintext = held.plaintext if held else None
            if held is not None and plaintext is None:  # restarted: recover it from where it is wrapped now
                plaintext, _ = self._as_identity(principal, held.key_url, "unwrapkey", held.wrapped)
            plaintext = plaintext or os.urandom(32)
            wrapped, _ = self._as_identity(principal, key_url, "wrapkey", plaintext)
            held = HeldDek(key_url, wrapped, _digest(plaintext), plaintext)
            self._deks[resource_id.lower()] = held
        unwrapped, _ = self._as_identity(principal, key_url, "unwrapkey", held.wrapped)
        if not hmac.compare_digest(_digest(unwrapped), held.check):
            raise ConsumerUnavailable("KeyMismatch", f"unwrapkey of {key_url} did not return the resource's DEK.")
        held.plaintext = unwrapped

    def _follow_latest(self, document: dict[str, Any]) -> None:
        props = document["properties"]
        active = props.get("activeKey") or {}
        try:
            service, name, version = self._service(str(active.get("keyUrl", "")))
            key = service.store.get(name)
        except (ConsumerUnavailable, KeyVaultError):
            return  # the check that follows reports it
        latest = key.latest
        if version and version.lower() == latest.version:
            return
        if version and service.store.clock.timestamp() < latest.created + self.follow_delay_seconds:
            return
        moved = {**active, "keyUrl": service.store.key_id(key.name, latest.version)}
        previous = list(props.get("previousKeys") or [])
        if version:
            previous.append(copy.deepcopy(active))
        changes: dict[str, Any] = {"activeKey": moved, "previousKeys": previous}
        if version:
            changes["lastKeyRotationTimestamp"] = service.store.clock.now().isoformat().replace("+00:00", "Z")
        self._arm.set_properties(document["id"], changes)

    def _record(self, document: dict[str, Any], problem: ConsumerUnavailable | None) -> None:
        rid = document["id"]
        history = self._history.setdefault(rid, History())
        was = history.transitions[-1]["available"] if history.transitions else None
        if problem is None:
            history.available += 1
        else:
            history.unavailable += 1
            history.last_error = f"{problem.code}: {problem.message}"
        if was is not (problem is None):
            history.transitions.append({"available": problem is None, "error": history.last_error if problem else None})
        if document["type"].lower() == MYSQL_SERVERS:
            encryption = dict(document["properties"].get("dataEncryption") or {})
            encryption["primaryEncryptionKeyStatus"] = "Valid" if problem is None else "Invalid"
            changes: dict[str, Any] = {"dataEncryption": encryption}
            if problem is None:
                changes.update(state="Ready", stateReason=None)
            else:
                changes.update(
                    state="Inaccessible",
                    stateReason=(
                        f"The server lost access to its customer-managed key and denies all connections until "
                        f"access is restored ({problem.code}: {problem.message})"
                    ),
                )
        elif problem is None:
            changes = {"autoKeyRotationError": None}
        else:
            changes = {"autoKeyRotationError": {"code": problem.code, "message": problem.message}}
        self._arm.set_properties(rid, changes)


def consumer_admin_routes(keys: ConsumerKeys) -> list[web.RouteDef]:
    """`GET /admin/consumers`: each consumer's availability history; `DELETE` starts the counts afresh."""
    routes = web.RouteTableDef()

    @routes.get("/admin/consumers")
    async def history(request: web.Request) -> web.Response:
        return web.json_response({"consumers": keys.history()})

    @routes.delete("/admin/consumers")
    async def clear(request: web.Request) -> web.Response:
        keys.clear_history()
        return web.Response(status=204)

    return list(routes)
