"""Who may use each managed key: reconciled against the inventory, extra access removed (enforce) or reported (audit).

A key's plan (functions.access.plan, pure) says what to grant, remove or trim so its consumer holds exactly key use;
functions.access.steps records and executes it; functions.access.reconcile runs one key end to end and queues the
follow-up after RBAC propagation; functions.access.events turns role-assignment and access-policy events into one
queued reconcile per key; functions.access.review judges grants for the compliance report.
"""

from functions.access.events import on_role_assignment_changed, on_vault_access_policy_changed, reconcile_queued
from functions.access.plan import Deferred, GrantRole, RemoveAssignment, Report, TrimKeyOps
from functions.access.reconcile import (
    CONSUMER_LOST_ALERT,
    FOLLOW_UP_SECONDS,
    RBAC_PROPAGATION,
    REMEDIATED_ALERT,
    VIOLATION_ALERT,
    ReconcileOutcome,
    follow_up_check,
    reconcile_key,
)
from functions.access.review import grants_from_access_policies, grants_from_assignments, review_grants

__all__ = [
    "CONSUMER_LOST_ALERT",
    "FOLLOW_UP_SECONDS",
    "RBAC_PROPAGATION",
    "REMEDIATED_ALERT",
    "VIOLATION_ALERT",
    "Deferred",
    "GrantRole",
    "ReconcileOutcome",
    "RemoveAssignment",
    "Report",
    "TrimKeyOps",
    "follow_up_check",
    "grants_from_access_policies",
    "grants_from_assignments",
    "on_role_assignment_changed",
    "on_vault_access_policy_changed",
    "reconcile_key",
    "reconcile_queued",
    "review_grants",
]
