"""Revocation and break-glass restoration: the most dangerous buttons, made deliberate, verified and loud.

A revocation is planned from what Azure reports now (functions.revocation.plan), and only a plan unless the operator
says `dry_run: false`. Executing it records it in the ledger first (so that reconciliation, running concurrently,
already treats the principal as revoked on purpose, and rotation leaves a shredded key alone), then removes the
principal's key-use assignments at the key, or disables every enabled version, and reads the state back at once.
RBAC changes reach Key Vault only after up to about ten minutes, so a follow-up check is queued for after that delay:
it re-reads the assignments and versions, probes where the app can (an unwrap under a shredded key must fail), and
looks at the consumers, which should now report that they lost their key. Only then is the revocation `verified`.

Every state change of a revocation is an ETag-guarded update of its record: of two instances handling the same
request or follow-up, exactly one moves it, and only that one alerts. A repeated request for the same subject
answers with the first revocation's id; one that failed is resumed by it.
"""

from functions.revocation.check import CONSUMER_GRACE, check_revocation
from functions.revocation.common import (
    ACCESS_RESTORED_ALERT,
    ACCESS_REVOKED_ALERT,
    FAILED_ALERT,
    KEY_DISABLED_ALERT,
    MAX_CHECKS,
    MESSAGE_VERSION,
    STALE_PLANNED,
    VERIFIED_ALERT,
    CheckOutcome,
    RevocationOutcome,
    notify_only_policy,
    record_refusal,
    rotates,
)
from functions.revocation.execute import revoke
from functions.revocation.restore import get_revocation, restore
from functions.revocation.watch import watch_revocations

__all__ = [
    "ACCESS_RESTORED_ALERT",
    "ACCESS_REVOKED_ALERT",
    "CONSUMER_GRACE",
    "FAILED_ALERT",
    "KEY_DISABLED_ALERT",
    "MAX_CHECKS",
    "MESSAGE_VERSION",
    "STALE_PLANNED",
    "VERIFIED_ALERT",
    "CheckOutcome",
    "RevocationOutcome",
    "check_revocation",
    "get_revocation",
    "notify_only_policy",
    "record_refusal",
    "restore",
    "revoke",
    "rotates",
    "watch_revocations",
]
