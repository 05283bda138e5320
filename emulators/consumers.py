"""Emulated consumers that really use their keys: the MySQL flexible servers and disk encryption sets held by ARM.

A real server or disk encryption set keeps a data encryption key (DEK) of its own, wrapped by the customer-managed
key version it points at, and must unwrap it, as its own identity, to serve data. Pointing at a version only matters
if that is observable: so each emulated consumer holds a random DEK (its plaintext never logged, persisted or
returned), wrapped under its version, and unwraps it through the Key Vault emulator's own authorizer and store (in
process: no faults, latency or throttling counted against the app's calls) whenever it is changed (a PUT or PATCH: it
wraps its DEK under the new version first, as a real server does, then proves it can unwrap it) and whenever the
clock moves (the admin API's hook and the lifecycle tick, about once a second).

When it cannot (identity without the role, version disabled, key or vault deleted, identity deleted) its state says
so, in Azure's shape: a MySQL server goes `properties.state: "Inaccessible"` with
`dataEncryption.primaryEncryptionKeyStatus: "Invalid"` (and, the emulator's choice since Azure gives the reason only
in the portal and Resource Health, `properties.stateReason`); a disk encryption set carries
`properties.autoKeyRotationError: {code, message}`. Both recover (Ready / no error) once they can unwrap again. An
expired version still unwraps (Key Vault allows unwrap after exp), so expiry alone locks nobody out.

A disk encryption set with `rotationToLatestKeyVersionEnabled` moves itself to the key's newest version once that
version is `follow_delay_seconds` old on the emulated clock (Azure: within an hour; config `des_follow_seconds`,
default 30 min), keeping the old one in `previousKeys`, and only after proving it can use the new version; when it
cannot it stays where it is with an `autoKeyRotationError`, and (as Azure documents) does not try that version again
until the set is written. Its disks follow it (emulators.disks: `des_disk_move_seconds` later, unless held), and only
then does `previousKeys` empty, whether the set moved itself or was pointed at a new version by a write.

A caller's key change (a PATCH, or a PUT of an existing consumer) is a long-running operation (emulators.operations):
before ARM applies it, `prove` wraps and unwraps the DEK under the new key as the consumer's identity, and the
operation fails, leaving the consumer as it was, when it cannot.

Only the wrapped DEK is persisted (the state file); after a restart the plaintext comes back by an unwrap, as a real
server's would.

How unavailability shows (Azure's shape, above) and the history of checks are emulators.consumer_availability.
`history()` counts, per consumer, the checks that found it available and unavailable, so a test can assert that a
consumer "stayed available throughout" a rotation.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from emulators.arm_resources import DISK_ENCRYPTION_SETS, MYSQL_SERVERS
from emulators.consumer_availability import ConsumerUnavailable, History, count_check, shown_state
from emulators.disks import DiskMoves
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
    def write_in_flight(self, resource_id: str) -> bool: ...


@dataclass
class HeldDek:
    """What a running server holds: its DEK wrapped under one version, and the plaintext in memory only."""

    key_url: str
    wrapped: bytes = field(repr=False)
    check: bytes = field(repr=False)  # a digest of the plaintext, to know an unwrap gave the DEK back
    plaintext: bytes | None = field(default=None, repr=False)


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
        disks: DiskMoves | None = None,
    ) -> None:
        self._arm = arm
        self._services = services
        self.follow_delay_seconds = follow_delay_seconds
        self.disks = disks or DiskMoves()
        self._deks: dict[str, HeldDek] = {}
        self._history: dict[str, History] = {}
        self._rotation_blocked: dict[str, tuple[str, ConsumerUnavailable]] = {}  # id -> (target, why it failed)

    # ---- driving ------------------------------------------------------------------------------------------
    def on_write(self, resource_id: str, resource_type: str) -> None:
        """ARM's hook after a PUT or PATCH: a changed consumer proves at once that it can use its (new) key."""
        if resource_type.lower() in (MYSQL_SERVERS, DISK_ENCRYPTION_SETS):
            self._rotation_blocked.pop(resource_id.lower(), None)
            self.check(resource_id)

    def prove(self, document: dict[str, Any]) -> dict[str, str] | None:
        """Before ARM applies a key change (emulators.operations): can the consumer, as the document's identity,
        wrap its DEK under the new key and unwrap it? None if so, else the ARM error the operation fails with (the
        code is the emulator's: Azure's varies by service and is not documented; the message carries Key Vault's)."""
        if document["type"].lower() == MYSQL_SERVERS:
            encryption = document.get("properties", {}).get("dataEncryption") or {}
            if str(encryption.get("type", "")).lower() != "azurekeyvault":
                return None
        problem = self._check_active(document)
        if problem is None:
            return None
        return {
            "code": "KeyVaultAccessFailed" if problem.code != "IdentityNotFound" else problem.code,
            "message": f"The resource cannot use the new key, so its key was not changed ({problem.code}: "
            f"{problem.message})",
        }

    def on_delete(self, resource_id: str) -> None:
        self._deks.pop(resource_id.lower(), None)
        self._rotation_blocked.pop(resource_id.lower(), None)

    def check_all(self) -> int:
        """One pass over every consumer (after a clock move, and on the lifecycle tick); how many were checked."""
        return len(self.check_each())

    def check_each(self) -> dict[str, bool]:
        """One pass over every consumer: consumer id -> whether it could use its key (what the RBAC propagation
        windows count, emulators.clock_walk)."""
        results: dict[str, bool] = {}
        for resource_type in (MYSQL_SERVERS, DISK_ENCRYPTION_SETS):
            for document in self._arm.resources_of_type(resource_type):
                results[document["id"]] = self.check(document["id"])
        return results

    def history(self) -> dict[str, dict[str, Any]]:
        return {rid: h.to_json() for rid, h in self._history.items()}

    def reset(self) -> None:
        self.disks.reset()
        self._deks.clear()
        self._history.clear()
        self._rotation_blocked.clear()

    def clear_history(self) -> None:
        self._history.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        """Wrapped DEKs only, as a server persists them; the plaintext is recovered by an unwrap after a restart."""
        return [
            {
                "resource_id": rid,
                "key_url": held.key_url,
                "wrapped": base64.b64encode(held.wrapped).decode("ascii"),
                "check": base64.b64encode(held.check).decode("ascii"),
            }
            for rid, held in self._deks.items()
        ]

    def restore(self, data: list[dict[str, Any]]) -> None:
        self._deks = {
            item["resource_id"].lower(): HeldDek(
                item["key_url"], base64.b64decode(item["wrapped"]), base64.b64decode(item["check"])
            )
            for item in data
        }

    def _now(self) -> str | None:
        """The emulated time (every store shares the host's clock)."""
        store = next((s.store for s in self._services.values()), None)
        return store.clock.now().isoformat().replace("+00:00", "Z") if store else None

    # ---- one consumer -------------------------------------------------------------------------------------
    def check(self, resource_id: str) -> bool:
        """Whether the consumer can use its active key now; also where a DES following latest moves itself."""
        document = self._arm.resource(resource_id)
        if document is None:
            return False
        if document["type"].lower() == MYSQL_SERVERS:
            encryption = document.get("properties", {}).get("dataEncryption") or {}
            if str(encryption.get("type", "")).lower() != "azurekeyvault":
                return True  # service-managed keys: nothing of the customer's to lose
        problem = self._check_active(document)
        rotation_problem = None
        if problem is None and document["type"].lower() == DISK_ENCRYPTION_SETS:
            try:
                self._follow_latest(document)
            except ConsumerUnavailable as failed:  # it stays on the version it has; the error says why
                rotation_problem = failed
            self._disks_follow(document["id"])
        self._record(document, problem, rotation_problem)
        return problem is None

    def _check_active(self, document: dict[str, Any]) -> ConsumerUnavailable | None:
        props = document.get("properties", {})
        if document["type"].lower() == MYSQL_SERVERS:
            encryption = props.get("dataEncryption") or {}
            key_url = encryption.get("primaryKeyURI")
            identity_id = encryption.get("primaryUserAssignedIdentityId")
        else:
            key_url = (props.get("activeKey") or {}).get("keyUrl")
            identity_id = None
        try:
            principal = self._principal(document, identity_id)
            self._use_key(document["id"], principal, str(key_url or ""))
        except ConsumerUnavailable as problem:
            return problem
        return None

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
        """Move to the newest version once it is old enough, but only after proving the set can use it (its DEK
        re-wrapped and unwrapped there as its identity): a rotation that fails leaves the active key alone."""
        props = document["properties"]
        if not props.get("rotationToLatestKeyVersionEnabled") or self._arm.write_in_flight(document["id"]):
            return  # a caller's key change is being applied (emulators.operations): that decides the key first
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
        target = service.store.key_id(key.name, latest.version)
        blocked = self._rotation_blocked.get(document["id"].lower())
        if blocked is not None and blocked[0] == target:
            raise blocked[1]  # as in Azure: not attempted again until the error is fixed (the set is written)
        try:
            self._use_key(document["id"], self._principal(document, None), target)
        except ConsumerUnavailable as problem:
            self._rotation_blocked[document["id"].lower()] = (target, problem)
            raise
        moved = {**active, "keyUrl": target}
        previous = list(props.get("previousKeys") or [])
        if version:
            previous.append(copy.deepcopy(active))
        changes: dict[str, Any] = {"activeKey": moved, "previousKeys": previous}
        if version:
            changes["lastKeyRotationTimestamp"] = service.store.clock.now().isoformat().replace("+00:00", "Z")
        self._arm.set_properties(document["id"], changes)

    def _disks_follow(self, resource_id: str) -> None:
        """Once every disk has reached the set's active key (emulators.disks), `previousKeys` empties, as in Azure."""
        store = next((s.store for s in self._services.values()), None)
        document = self._arm.resource(resource_id)
        if store is None or document is None:
            return
        if self.disks.all_moved(resource_id, document.get("properties", {}), store.clock.timestamp()):
            self._arm.set_properties(resource_id, {"previousKeys": []})

    def _record(
        self,
        document: dict[str, Any],
        problem: ConsumerUnavailable | None,
        rotation_problem: ConsumerUnavailable | None = None,
    ) -> None:
        """History counts whether the active key worked; a DES's error also reports a failed automatic rotation."""
        rid = document["id"]
        count_check(self._history.setdefault(rid, History()), problem, self._now())
        self._arm.set_properties(rid, shown_state(document, problem, rotation_problem))


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
