"""Names of the app's work queues (Azure Storage queues), which function_app.py and the container share."""

from __future__ import annotations

REWRAP_QUEUE = "cmk-rewrap"
ACCESS_CHECK_QUEUE = "cmk-access-check"
REVOCATION_CHECK_QUEUE = "cmk-revocation-check"
# One consumer (MySQL flexible server, disk encryption set) to move to its key's current version, and its follow-ups.
MOVE_QUEUE = "cmk-move"
# One managed key to reconcile, enqueued by the role-assignment and access-policy events.
RECONCILE_QUEUE = "cmk-reconcile"
