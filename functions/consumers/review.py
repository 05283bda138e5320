"""A key's Azure consumers as part of its compliance: the identity each really uses, whether it can reach its key,
and whether it has moved to the current version within its kind's lag.

A key that is perfect in its vault is still failing its purpose when the MySQL server using it is Inaccessible, when
a disk encryption set's automatic rotation failed, or when the server reaches it through an identity the inventory
does not name (whose grant reconcile then keeps, but nothing else protects). Read-only, like the rest of the report.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from functions.consumers.identities import ConsumerStates
from shared.arm_ids import last_segment
from shared.findings import FindingCode
from shared.model import ConsumerKind, ConsumerState, KeyVersion
from shared.timestamps import iso_utc

AddFinding = Callable[..., None]
# How long after a version's creation a consumer may still be on an older one. The app moves a MySQL server (and a
# DES that does not follow the latest) itself, within minutes; a DES that follows the latest is moved by Azure
# within about an hour, so it gets that hour plus a margin.
MOVED_BY_APP_LAG = timedelta(hours=1)
FOLLOWS_LATEST_LAG = timedelta(hours=2)


def lag_for(state: ConsumerState) -> timedelta:
    if state.kind is ConsumerKind.DISK_ENCRYPTION_SET and state.follows_latest:
        return FOLLOWS_LATEST_LAG
    return MOVED_BY_APP_LAG


def review_consumers(
    managed: Any, states: ConsumerStates, current: KeyVersion | None, now: datetime, add: AddFinding
) -> None:
    """Findings for each Azure consumer of `managed`; `current` is the key's current version (None: unreadable)."""
    for resource_id, error in states.unreadable:
        why = f"consumer {resource_id} could not be read: {error}"
        add(FindingCode.CONSUMER_UNREADABLE, why, resource_id=resource_id)
    for state in states.states:
        _review_identity(managed, states, state, add)
        _review_health(state, add)
        if current is not None:
            _review_lag(state, current, now, add)


def _review_identity(managed: Any, states: ConsumerStates, state: ConsumerState, add: AddFinding) -> None:
    detail = {"resource_id": state.resource_id, "identities": list(state.identities)}
    if state.unresolved_identities:
        add(
            FindingCode.CONSUMER_UNREADABLE,
            f"{state.resource_id} uses identity {', '.join(state.unresolved_identities)}, whose principal id could "
            "not be read",
            **detail,
        )
    if state in states.mismatched():
        add(
            FindingCode.CONSUMER_IDENTITY_MISMATCH,
            f"{state.resource_id} reaches {managed.name} as {', '.join(state.identities)}, but the inventory names "
            f"{states.inventory_identity}: the grant of the identity it really uses is kept, never made by the app",
            inventory_identity=states.inventory_identity,
            **detail,
        )


def _review_health(state: ConsumerState, add: AddFinding) -> None:
    if state.available:
        return
    detail = {"resource_id": state.resource_id, "identities": list(state.identities), "error": state.error}
    if state.kind is ConsumerKind.MYSQL_FLEXIBLE_SERVER:
        add(FindingCode.CONSUMER_INACCESSIBLE, f"{state.resource_id} is Inaccessible: {state.error}", **detail)
    else:
        add(FindingCode.CONSUMER_KEY_ROTATION_ERROR, f"{state.resource_id} reports {state.error}", **detail)


def _review_lag(state: ConsumerState, current: KeyVersion, now: datetime, add: AddFinding) -> None:
    if not state.key_url or last_segment(state.key_url).lower() == current.version.lower():
        return
    if current.created is None or now - current.created <= lag_for(state):
        return
    add(
        FindingCode.CONSUMER_VERSION_LAG,
        f"{state.resource_id} still uses version {last_segment(state.key_url)}; the current version "
        f"{current.version} was created {iso_utc(current.created)}, more than {lag_for(state)} ago",
        resource_id=state.resource_id,
        identities=list(state.identities),
        version=last_segment(state.key_url),
    )
