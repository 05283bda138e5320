"""Rotating keys, once per state, and retiring the versions nothing needs any more.

functions.rotation.rotate makes a new version under a claim keyed on the key and its current version, so every trigger
that notices the same thing converges on one rotation; functions.rotation.triggers are the near-expiry and expiry
events and the operator's `POST /api/rotations`; functions.rotation.imports asks a person for the next version of a
key imported from an on-premises HSM, which the app never makes; functions.rotation.retirement disables old versions
once no DEK, no shard key and no consumer uses them.
"""

from functions.rotation.imports import IMPORT_DUE_ALERT, ImportDue, ask_for_import, import_due
from functions.rotation.retirement import RetirementDecision, retire_unused_versions, shard_key_counts
from functions.rotation.rotate import (
    CLAIM_TTL,
    EXPIRED_ALERT,
    FAILED_ALERT,
    ROTATED_ALERT,
    SUPERSEDED_ALERT,
    RotationOutcome,
    RotationStatus,
    rotate_from,
    rotation_due,
)
from functions.rotation.triggers import OPERATOR_DEDUPE_WINDOW, on_expired, on_near_expiry, rotate_now

__all__ = [
    "CLAIM_TTL",
    "EXPIRED_ALERT",
    "FAILED_ALERT",
    "IMPORT_DUE_ALERT",
    "OPERATOR_DEDUPE_WINDOW",
    "ROTATED_ALERT",
    "SUPERSEDED_ALERT",
    "ImportDue",
    "RetirementDecision",
    "RotationOutcome",
    "RotationStatus",
    "ask_for_import",
    "import_due",
    "on_expired",
    "on_near_expiry",
    "retire_unused_versions",
    "rotate_from",
    "rotate_now",
    "rotation_due",
    "shard_key_counts",
]
