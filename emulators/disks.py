"""The managed disks behind each emulated disk encryption set, and when they have moved to its active key.

In Azure, a disk encryption set's `previousKeys` lists the key versions some of its disks are still encrypted with:
when the set's active key changes (by a write, or by `rotationToLatestKeyVersionEnabled` following the newest
version), its disks move to the new key over the following time ("within an hour"), and only when every disk has moved
does `previousKeys` empty. Until then the old versions must stay enabled and usable, so an app that retires old
versions has to wait for it. Some disks are left behind (a stopped VM, a detached disk): `hold` models that, and
then `previousKeys` keeps the old versions until the hold is lifted.

The emulator models a set's disks as one group: they move together `move_seconds` (on the emulated clock) after the
set's `lastKeyRotationTimestamp`, unless held. Holds live in memory (an admin setting, like Event Grid's pending
retries), and a reset lifts them.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from aiohttp import web

DEFAULT_DISK_MOVE_SECONDS = 20 * 60  # inside Azure's "within an hour", after the set itself moved


def _timestamp(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class DiskMoves:
    """Which disk encryption sets hold their disks back, and whether a set's disks have all moved."""

    def __init__(self, move_seconds: float = DEFAULT_DISK_MOVE_SECONDS) -> None:
        if move_seconds < 0:
            raise ValueError(f"des_disk_move_seconds: must be >= 0, got {move_seconds!r}")
        self.move_seconds = float(move_seconds)
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def hold(self, resource_id: str, held: bool) -> None:
        with self._lock:
            (self._held.add if held else self._held.discard)(resource_id.lower())

    def is_held(self, resource_id: str) -> bool:
        with self._lock:
            return resource_id.lower() in self._held

    def moves_at(self, properties: dict[str, Any]) -> float | None:
        """When the set's disks reach its active key (None: no rotation recorded, nothing to move)."""
        rotated = _timestamp(properties.get("lastKeyRotationTimestamp"))
        return None if rotated is None else rotated + self.move_seconds

    def all_moved(self, resource_id: str, properties: dict[str, Any], now: float) -> bool:
        """Whether `previousKeys` should empty now: there are some, nothing is held, and the lag has passed."""
        if not properties.get("previousKeys") or self.is_held(resource_id):
            return False
        due = self.moves_at(properties)
        return due is None or now >= due

    def describe(self, document: dict[str, Any]) -> dict[str, Any]:
        props = document.get("properties", {})
        due = self.moves_at(props) if props.get("previousKeys") else None
        return {
            "resource_id": document["id"],
            "held": self.is_held(document["id"]),
            "previous_keys": len(props.get("previousKeys") or []),
            "disks_move_at": dt.datetime.fromtimestamp(due, dt.UTC).isoformat().replace("+00:00", "Z")
            if due is not None
            else None,
        }

    def reset(self) -> None:
        with self._lock:
            self._held.clear()


def disk_admin_routes(disks: DiskMoves, sets: Any) -> list[web.RouteDef]:
    """`GET /admin/arm/disk-encryption-sets`: each set's disks; `POST .../hold {"resource_id", "held"}` holds a
    set's disks back (or lets them move). `sets()` lists the disk encryption set documents."""
    routes = web.RouteTableDef()

    @routes.get("/admin/arm/disk-encryption-sets")
    async def list_sets(request: web.Request) -> web.Response:
        return web.json_response({"move_seconds": disks.move_seconds, "value": [disks.describe(d) for d in sets()]})

    @routes.post("/admin/arm/disk-encryption-sets/hold")
    async def hold(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _bad('body: expected {"resource_id": "...", "held": true}')
        if not isinstance(body.get("resource_id"), str) or not body["resource_id"]:
            return _bad("resource_id: required, a disk encryption set's resource id")
        if not isinstance(body.get("held", True), bool):
            return _bad(f"held: expected true or false, got {body['held']!r}")
        disks.hold(body["resource_id"], body.get("held", True))
        return web.json_response({"resource_id": body["resource_id"], "held": disks.is_held(body["resource_id"])})

    return list(routes)


def _bad(message: str) -> web.Response:
    return web.json_response({"error": {"code": "InvalidField", "message": message}}, status=400)
