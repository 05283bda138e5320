"""Access-change events decide and enqueue: one `cmk-reconcile` message per managed key the change may touch.

A role assignment event names a scope, not a grant, and a vault's access-policy event names a vault: reconciling
every key under it inside the Event Grid trigger costs a key's assignments, role definitions and versions per key
(N+1 Key Vault reads) and can outlast Event Grid's 30 s, which then delivers it again while the first run goes on
(review H6). So the trigger only enqueues, each key once per event, and `reconcile_queued` reconciles one key per
message through the same `functions.access.reconcile.reconcile_key` every other path uses. Reconcile decides
from what ARM lists when it runs, so a duplicate message (a redelivered event) repeats a read, never a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from functions.access.reconcile import FOLLOW_UP_SECONDS, RBAC_PROPAGATION, ReconcileOutcome, key_named, reconcile_key
from shared.errors import MalformedMessage
from shared.events import RoleAssignmentChanged, VaultAccessPolicyChanged
from shared.ports import (
    AccessControl,
    Alerts,
    AuditTrail,
    Claims,
    Clock,
    Consumers,
    KeyVault,
    Revocations,
    RoleDefinitions,
    Vaults,
    WorkQueue,
)
from shared.telemetry import NO_TELEMETRY, Telemetry

MESSAGE_VERSION = 1


@dataclass(frozen=True)
class ReconcileEnqueued:
    """What an access event became: the keys queued for reconciliation, each once."""

    event_id: str
    keys: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "enqueued": list(self.keys)}


def _enqueue(keys, event_id: str, queue: WorkQueue) -> ReconcileEnqueued:
    names: list[str] = []
    for managed in keys:
        name = f"{managed.vault.name}/{managed.name}"  # vault/key: exactly one key even when two vaults share a name
        if name not in names:
            names.append(name)
    for name in names:
        queue.send({"version": MESSAGE_VERSION, "key": name, "trigger": f"event:{event_id}"[:200]})
    return ReconcileEnqueued(event_id, tuple(names))


def on_role_assignment_changed(event: RoleAssignmentChanged, *, reconcile_queue: WorkQueue) -> ReconcileEnqueued:
    """The event names the scope, not the grant: every managed key under it is reconciled, from the queue."""
    return _enqueue(event.affected_keys, event.event_id, reconcile_queue)


def on_vault_access_policy_changed(
    event: VaultAccessPolicyChanged, *, inventory: Any, reconcile_queue: WorkQueue
) -> ReconcileEnqueued:
    """The vault's policies or its permission model changed: every managed key in it is reconciled, from the queue."""
    keys = [k for k in inventory.keys if k.vault.name.lower() == event.vault_name.lower()]
    return _enqueue(keys, event.event_id, reconcile_queue)


def reconcile_queued(
    message: object,
    *,
    inventory: Any,
    access: AccessControl,
    roles: RoleDefinitions,
    vault: KeyVault,
    vault_settings: Vaults,
    revocations: Revocations,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    access_checks: WorkQueue,
    consumers: Consumers,
    rbac_propagation: timedelta = RBAC_PROPAGATION,
    follow_up_delay: int = FOLLOW_UP_SECONDS,
    claims: Claims | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
) -> ReconcileOutcome:
    """One key, reconciled as an event would have (every version's key ops checked, follow-up scheduled)."""
    ports = {name: value for name, value in locals().items() if name != "message"}
    if not isinstance(message, dict) or message.get("version") != MESSAGE_VERSION:
        raise MalformedMessage("version", f"must be {MESSAGE_VERSION}")
    managed = key_named(message, inventory, "a reconcile message names the inventory key it reconciles")
    trigger = message.get("trigger")
    return reconcile_key(managed, trigger=trigger[:200] if isinstance(trigger, str) and trigger else "queue", **ports)
