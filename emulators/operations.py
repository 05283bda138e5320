"""ARM long-running operations that take time, as a MySQL flexible server's or a disk encryption set's key change does.

In Azure, a PATCH (or a PUT of an existing resource) that changes a flexible server's `dataEncryption` or a disk
encryption set's `activeKey` is accepted with 202 and `Azure-AsyncOperation` / `Location` headers; the operation
stays `InProgress` for minutes, then goes `Succeeded`, or `Failed` with an ARM error (for example when the
resource's identity cannot use the new key version, which the service proves before it switches). Event Grid waits
only 30 s for a webhook's answer, so an app that follows such a poller inside an event handler gets its event
delivered again: the emulator's default duration (`DEFAULT_LRO_SECONDS`) is therefore longer than 30 s of real time.

Choices where Azure leaves room (documented in the README's emulator section too):
* The duration runs on the emulated clock (real time plus the admin offset), so it passes in real time and also when
  a test or the soak moves the clock forward. Completion never depends on a poller: the host's lifecycle tick (about
  once a second) completes due operations; a status or resource GET completes a due one first, so no reader sees a
  stale `InProgress`.
* Meanwhile a GET of the resource shows the old configuration (the strict choice: the key change is visible only
  once it succeeded) with `provisioningState: "Updating"`, and for a flexible server `state: "Updating"` (unless
  it is Inaccessible: a server that lost its key says so mid-update too, as that is what its users see).
* A second write while one is in flight is refused with 409 `AnotherOperationInProgress`. Neither the MySQL nor the
  Compute REST specs list a code for this case; the search over the Azure REST specs and SDK sources found this one
  as ARM's generic "one change at a time" refusal (Microsoft.Network answers it for a second write to a resource
  whose previous write is still running, and IaC sources retry on it), so it is the code the emulator answers.
* Writes of these types that do not touch the key configuration (tags, say) are still answered 202, but their
  operation is already `Succeeded`: the SDK's poller runs its real code path either way.

This module keeps the operations and the per-resource write counts; emulators.arm applies and verifies the writes.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aiohttp import web

from emulators.core import MovableClock

DEFAULT_LRO_SECONDS = 40.0  # longer than Event Grid's 30 s delivery timeout, as Azure's minutes are
IN_PROGRESS, SUCCEEDED, FAILED = "InProgress", "Succeeded", "Failed"
# Per Azure's guidance a poller waits Retry-After seconds between status reads; the emulator asks for at most this.
MAX_RETRY_AFTER_SECONDS = 10


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Operation:
    """One write being carried out. `method`/`body` are replayed on the resource when the operation completes."""

    id: str
    resource_id: str
    namespace: str
    location: str
    method: str
    started: float  # emulated clock
    due: float
    body: Any = None  # None: nothing left to apply (a write that took effect at once)
    status: str = IN_PROGRESS
    ended: float | None = None
    error: dict[str, str] | None = None
    caller: dict[str, Any] = field(default_factory=dict)  # the Call's fields, for the write event on completion

    def to_status(self, path: str) -> dict[str, Any]:
        """The `azureAsyncOperation` body Azure answers."""
        body: dict[str, Any] = {"id": path, "name": self.id, "status": self.status, "startTime": _utc(self.started)}
        if self.ended is not None:
            body["endTime"] = _utc(self.ended)
        if self.error is not None:
            body["error"] = dict(self.error)
        return body

    def to_admin(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource_id": self.resource_id,
            "method": self.method,
            "status": self.status,
            "started": _utc(self.started),
            "due": _utc(self.due),
            "ended": _utc(self.ended) if self.ended is not None else None,
            "error": dict(self.error) if self.error else None,
        }


class Operations:
    """Every operation ARM started, the configured duration, and how many writes each resource received."""

    def __init__(self, clock: MovableClock, duration_seconds: float = DEFAULT_LRO_SECONDS) -> None:
        if duration_seconds < 0:
            raise ValueError(f"lro_seconds: must be >= 0, got {duration_seconds!r}")
        self._clock = clock
        self._lock = threading.RLock()
        self.configured_seconds = float(duration_seconds)
        self.duration_seconds = float(duration_seconds)
        self._operations: dict[str, Operation] = {}
        # lower-cased resource id -> {resource_id, accepted, refused, by_method: {PUT|PATCH: {accepted, refused}}}
        self._patches: dict[str, dict[str, Any]] = {}

    # ---- writes -----------------------------------------------------------------------------------------------
    def in_flight(self, resource_id: str) -> Operation | None:
        with self._lock:
            return next(
                (
                    op
                    for op in self._operations.values()
                    if op.status == IN_PROGRESS and op.resource_id.lower() == resource_id.lower()
                ),
                None,
            )

    def count_write(self, resource_id: str, method: str, *, refused: bool) -> None:
        """One PUT or PATCH a long-running type received: accepted (applied or started) or refused (400, 409)."""
        outcome = "refused" if refused else "accepted"
        with self._lock:
            counts = self._patches.setdefault(
                resource_id.lower(), {"resource_id": resource_id, "accepted": 0, "refused": 0, "by_method": {}}
            )
            counts[outcome] += 1
            per_method = counts.setdefault("by_method", {}).setdefault(method, {"accepted": 0, "refused": 0})
            per_method[outcome] += 1

    def start(
        self,
        resource_id: str,
        namespace: str,
        location: str,
        method: str,
        *,
        body: Any,
        caller: dict[str, Any],
        timed: bool,
    ) -> Operation:
        """A new operation: timed ones complete `duration_seconds` from now; the others have succeeded already."""
        now = self._clock.timestamp()
        operation = Operation(
            id=str(uuid.uuid4()),
            resource_id=resource_id,
            namespace=namespace,
            location=location,
            method=method,
            started=now,
            due=now + (self.duration_seconds if timed else 0.0),
            body=copy.deepcopy(body) if timed else None,
            caller=dict(caller),
        )
        if not timed:
            operation.status, operation.ended = SUCCEEDED, now
        with self._lock:
            self._operations[operation.id] = operation
        return operation

    def due(self) -> list[Operation]:
        now = self._clock.timestamp()
        with self._lock:
            return sorted(
                (op for op in self._operations.values() if op.status == IN_PROGRESS and op.due <= now),
                key=lambda op: op.due,
            )

    def finish(self, operation: Operation, error: dict[str, str] | None = None) -> None:
        with self._lock:
            operation.status = FAILED if error else SUCCEEDED
            operation.error = error
            operation.ended = self._clock.timestamp()
            operation.body = None

    def get(self, operation_id: str) -> Operation | None:
        with self._lock:
            return self._operations.get(operation_id)

    def retry_after(self, operation: Operation) -> int:
        """Seconds a poller should wait before reading the status again (whole seconds, at least 1)."""
        remaining = operation.due - self._clock.timestamp()
        return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(remaining)))

    # ---- admin ------------------------------------------------------------------------------------------------
    def set_duration(self, seconds: object) -> float:
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError(f"duration_seconds: expected a number of seconds >= 0, got {seconds!r}")
        self.duration_seconds = float(seconds)
        return self.duration_seconds

    def to_admin(self) -> dict[str, Any]:
        with self._lock:
            return {
                "duration_seconds": self.duration_seconds,
                "operations": [op.to_admin() for op in sorted(self._operations.values(), key=lambda o: o.started)],
                "patches": {
                    c["resource_id"]: {
                        "accepted": c["accepted"],
                        "refused": c["refused"],
                        "by_method": copy.deepcopy(c.get("by_method", {})),
                    }
                    for c in self._patches.values()
                },
            }

    # ---- persistence ------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "duration_seconds": self.duration_seconds,
                    "operations": [asdict(op) for op in self._operations.values()],
                    "patches": list(self._patches.values()),
                }
            )

    def restore(self, data: object) -> None:
        if not isinstance(data, dict):  # an older state file kept {id: {resource_id, ...}}: nothing to resume
            data = {}
        with self._lock:
            self.duration_seconds = float(data.get("duration_seconds", self.configured_seconds))
            self._operations = {item["id"]: Operation(**item) for item in data.get("operations", [])}
            self._patches = {c["resource_id"].lower(): dict(c) for c in data.get("patches", [])}

    def reset(self) -> None:
        """Forget operations and counts; the duration goes back to the configured one."""
        with self._lock:
            self._operations.clear()
            self._patches.clear()
            self.duration_seconds = self.configured_seconds


class OperationsHost(Protocol):
    """ARM's side (emulators.arm.ArmState)."""

    operations: Operations

    def complete_due_operations(self) -> int: ...


def operations_admin_routes(arm: OperationsHost) -> list[web.RouteDef]:
    """`GET /admin/arm/operations`: every operation and the write counts per resource (due ones completed first);
    `PUT /admin/arm/operations {"duration_seconds": N}`: how long operations started from now on take."""
    routes = web.RouteTableDef()

    @routes.get("/admin/arm/operations")
    async def list_operations(request: web.Request) -> web.Response:
        arm.complete_due_operations()
        return web.json_response(arm.operations.to_admin())

    @routes.put("/admin/arm/operations")
    async def set_duration(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "duration_seconds" not in body:
            return web.json_response(
                {"error": {"code": "InvalidRequest", "message": 'body: expected {"duration_seconds": N}'}}, status=400
            )
        try:
            arm.operations.set_duration(body["duration_seconds"])
        except ValueError as exc:
            return web.json_response({"error": {"code": "InvalidField", "message": str(exc)}}, status=400)
        return web.json_response({"duration_seconds": arm.operations.duration_seconds})

    return list(routes)
