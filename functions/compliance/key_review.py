"""How a key's current version and rotation policy differ from the inventory.

A key consumed by a MySQL flexible server is held to what Microsoft documents for it: no expiration date on the
version the server uses (the server goes Inaccessible when it passes), so it rotates on age alone and neither its
version nor its rotation policy may carry an expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.findings import FindingCode
from shared.model import ConsumerKind, KeyVersion, RotationActionType, RotationPolicy
from shared.rotation_policy import duration_to_timedelta
from shared.timestamps import iso_utc

# The tag an operator sets on each version imported from the on-premises HSM: the SHA-256 (hex) of that version's
# public key as DER SubjectPublicKeyInfo. Key Vault's wire shows no origin (a version's attributes are the same for an
# imported and a generated key, and a vault rotation copies the tags), so the tag, checked against the version's own
# public key, is the rule: a version whose tag is missing or names another key was not imported.
IMPORT_TAG = "cmk-import-sha256"

# Slack when comparing an expiry with what the policy would have set (clock skew, create latency).
EXPIRY_TOLERANCE = timedelta(days=1)
AddFinding = Callable[..., None]


def forbids_expiry(managed: Any) -> bool:
    """True for a key whose consumers break when it expires (MySQL flexible server)."""
    return bool(managed.consumers_of(ConsumerKind.MYSQL_FLEXIBLE_SERVER))


def imported_version(version: KeyVersion) -> bool:
    """True when `version` carries the import tag and the tag names this version's own public key (when the service
    showed it; a copied tag names the key it was copied from)."""
    tag = (version.tags or {}).get(IMPORT_TAG, "").strip().lower()
    if not tag:
        return False
    return version.public_sha256 is None or tag == version.public_sha256.lower()


def review_imported_versions(managed: Any, versions: list[KeyVersion], add: AddFinding) -> None:
    """Every enabled version of an imported key must be one its on-premises HSM supplied (a disabled one harms
    nobody: it can neither wrap nor unwrap)."""
    for version in versions:
        if version.enabled and not imported_version(version):
            add(
                FindingCode.KEY_VERSION_GENERATED,
                f"version {version.version} of imported key {managed.name} was not imported (no {IMPORT_TAG} tag "
                "matching its public key): the vault generated it, so it is not the customer's own material; "
                "disable it once nothing uses it and import the real one",
                version=version.version,
            )


def _delta(duration: Any) -> timedelta | None:
    return duration.delta if duration is not None else None


def review_version(managed: Any, current: KeyVersion, now: datetime, add: AddFinding) -> None:
    if not current.enabled:
        add(FindingCode.KEY_DISABLED, f"current version {current.version} is disabled", version=current.version)
    if current.kty != managed.kty:
        add(FindingCode.KEY_TYPE_MISMATCH, f"kty is {current.kty}, inventory wants {managed.kty}", actual=current.kty)
    if current.size is not None and current.size != managed.size:
        add(FindingCode.KEY_SIZE_MISMATCH, f"size is {current.size}, inventory wants {managed.size}")
    extra = sorted(set(current.ops) - set(managed.ops))
    missing = sorted(set(managed.ops) - set(current.ops))
    if extra:
        add(FindingCode.KEY_OPS_EXCESS, f"key allows operations beyond {sorted(managed.ops)}: {extra}", ops=extra)
    if missing:
        add(FindingCode.KEY_OPS_MISSING, f"key lacks operations {missing}", ops=missing)
    _review_expiry(managed, current, now, add)
    rotation = managed.rotation
    if current.created and now - current.created > rotation.rotate_after.delta + EXPIRY_TOLERANCE:
        add(
            FindingCode.ROTATION_OVERDUE,
            f"current version was created {iso_utc(current.created)}, rotation is due every {rotation.rotate_after}",
        )


def _review_expiry(managed: Any, current: KeyVersion, now: datetime, add: AddFinding) -> None:
    rotation = managed.rotation
    expire_after, notify_before = _delta(rotation.expire_after), _delta(rotation.notify_before)
    if current.expires is None:
        if expire_after is not None:
            add(FindingCode.KEY_NO_EXPIRY, "current version has no expiry date")
        return
    if forbids_expiry(managed):
        add(
            FindingCode.KEY_EXPIRY_FORBIDDEN,
            f"current version {current.version} expires {iso_utc(current.expires)}, but key {managed.name} is "
            "consumed by a MySQL flexible server, which goes Inaccessible when its key expires: remove the expiry",
            version=current.version,
            field="expires",
        )
    if current.expires <= now:
        add(FindingCode.KEY_EXPIRED, f"current version expired at {iso_utc(current.expires)}")
    elif notify_before is not None and current.expires - now <= notify_before:
        add(FindingCode.KEY_NEAR_EXPIRY, f"current version expires at {iso_utc(current.expires)}")
    if (
        expire_after is not None
        and current.created
        and current.expires - current.created > (expire_after + EXPIRY_TOLERANCE)
    ):
        add(
            FindingCode.KEY_EXPIRY_TOO_LATE,
            f"expiry {iso_utc(current.expires)} is later than {rotation.expire_after} after creation",
        )


def review_policy(managed: Any, policy: RotationPolicy | None, add: AddFinding) -> None:
    rotation = managed.rotation
    actions = policy.actions if policy else ()
    rotate = [a for a in actions if a.action == RotationActionType.ROTATE]
    notify = [a for a in actions if a.action == RotationActionType.NOTIFY]
    got_expiry = duration_to_timedelta(policy.expires_in) if policy and policy.expires_in else None
    if got_expiry is not None and forbids_expiry(managed):
        add(
            FindingCode.KEY_EXPIRY_FORBIDDEN,
            f"the rotation policy gives new versions an expiry ({policy.expires_in if policy else None}), but key "
            f"{managed.name} is consumed by a MySQL flexible server: the next version would take it down on expiry",
            field="rotation_policy.expires_in",
        )
    if managed.rotation.imported:
        if rotate:
            add(
                FindingCode.IMPORTED_KEY_ROTATES,
                f"the rotation policy of imported key {managed.name} has a Rotate action: the vault would generate "
                "its next version instead of the customer's HSM",
                field="rotation_policy.lifetime_actions",
            )
        _review_notify(managed, policy, notify, add)
        return
    if not rotate:
        add(FindingCode.ROTATION_POLICY_MISSING, "no automatic rotation in the key's rotation policy")
        return
    wanted_expiry = _delta(rotation.expire_after)
    if got_expiry != wanted_expiry and not forbids_expiry(managed):
        add(
            FindingCode.ROTATION_POLICY_MISMATCH,
            f"policy expiresIn is {policy.expires_in if policy else None}, inventory wants {rotation.expire_after}",
            field="expires_in",
        )
    first = rotate[0]
    if first.time_after_create:
        got_rotate: timedelta | None = duration_to_timedelta(first.time_after_create)
    elif got_expiry is not None and first.time_before_expiry:
        got_rotate = got_expiry - duration_to_timedelta(first.time_before_expiry)
    else:
        got_rotate = None  # rotate-before-expiry on versions without an expiry never fires
    if got_rotate != rotation.rotate_after.delta:
        add(
            FindingCode.ROTATION_POLICY_MISMATCH,
            f"policy rotates after {got_rotate.days if got_rotate else 'never'} days, "
            f"inventory wants {rotation.rotate_after}",
            field="rotate_after",
        )
    _review_notify(managed, policy, notify, add)


def _review_notify(managed: Any, policy: RotationPolicy | None, notify: list, add: AddFinding) -> None:
    rotation = managed.rotation
    wanted_notify = _delta(rotation.notify_before)
    if wanted_notify is None:
        return  # no expiry, so nothing to notify before; Key Vault's default Notify is harmless then
    got_notify = (
        duration_to_timedelta(notify[0].time_before_expiry) if notify and notify[0].time_before_expiry else None
    )
    if got_notify != wanted_notify:
        add(
            FindingCode.ROTATION_POLICY_MISMATCH,
            f"policy notifies {got_notify.days if got_notify else 'never'} "
            f"days before expiry, inventory wants {rotation.notify_before}",
            field="notify_before",
        )
