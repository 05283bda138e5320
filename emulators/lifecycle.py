"""What Key Vault does on its own as time passes: near-expiry and expiry events, policy rotation, purging.

Run after every clock move (admin API) and about once a second, so moving the emulated clock past a notify or
rotate point has the same visible effect as waiting for it in Azure: one KeyNearExpiry per version at the notify
point (the policy's Notify timeBeforeExpiry, else 30 days before exp), one KeyExpired per version at exp, and a new
version (with KeyNewVersionCreated) when the current version reaches the policy's Rotate trigger. Only the current
version's lifetime drives rotation; a rotated-away version still gets its own expiry events.
"""

from __future__ import annotations

import logging

from emulators.keyvault_store import KeyVaultError, VaultStore
from emulators.rotation_policy import default_policy, duration_seconds

log = logging.getLogger(__name__)


def rotation_due_at(store: VaultStore, name: str) -> float | None:
    """When the current version of `name` is due for automatic rotation, or None if its policy never rotates it."""
    key = store.get(name)
    action = key.policy.rotate_action() if key.policy else None
    if action is None:
        return None
    latest = key.latest
    if action.time_after_create:
        return latest.created + duration_seconds(action.time_after_create)
    if action.time_before_expiry and latest.exp is not None:
        return latest.exp - duration_seconds(action.time_before_expiry)
    return None


async def run_lifecycle(store: VaultStore) -> int:
    """One pass over a vault; returns how many things happened (events emitted, versions created, keys purged)."""
    now = store.clock.timestamp()
    happened = 0
    for name, deleted in list(store.deleted.items()):
        if now >= deleted.scheduled_purge_date:
            del store.deleted[name]
            happened += 1
    for key in list(store.keys.values()):
        notify_before = (key.policy or default_policy()).notify_before_expiry_seconds()
        for version in key.versions:
            if version.exp is None:
                continue
            if not version.near_expiry_sent and now >= version.exp - notify_before:
                version.near_expiry_sent = True
                store.emit("KeyNearExpiry", key, version)
                happened += 1
            if not version.expired_sent and now >= version.exp:
                version.expired_sent = True
                store.emit("KeyExpired", key, version)
                happened += 1
        due = rotation_due_at(store, key.name)
        if due is not None and now >= due:
            try:
                await store.rotate(key.name)
                happened += 1
            except KeyVaultError as exc:  # deleted meanwhile: nothing to rotate
                log.info("automatic rotation of %s skipped: %s", key.name, exc.message)
    if happened:
        store.on_change()
    return happened
