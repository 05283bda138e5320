"""A key's rotation in the inventory: rotate after, expire after, notify before, as ISO-8601 durations, held to the
minimums Key Vault's rotation policy enforces so that a policy the app writes is never refused.

A key a MySQL flexible server consumes must never expire (Microsoft requires no expiration date on it: the server
goes Inaccessible when it passes), so it takes `rotate_after` alone and the other two are refused with that reason.
"""

from __future__ import annotations

from shared.inventory.checks import duration_check, parse_duration
from shared.inventory.model import IsoDuration, Rotation
from shared.inventory.section import MISSING, Section
from shared.rotation_policy import MIN_EXPIRES_IN as MIN_EXPIRE_AFTER
from shared.rotation_policy import MIN_NOTIFY_BEFORE_EXPIRY as MIN_NOTIFY_BEFORE
from shared.rotation_policy import MIN_ROTATE_AFTER_CREATE as MIN_ROTATE_AFTER
from shared.rotation_policy import MIN_ROTATE_BEFORE_EXPIRY

DEFAULT_NOTIFY_BEFORE = "P30D"
_ROTATION_FIELDS = ("rotate_after", "expire_after", "notify_before", "retire_after")
_NO_EXPIRY = (
    "not allowed on a key consumed by a MySQL flexible server: Microsoft requires its key to have no expiration "
    "date (the server goes Inaccessible when it expires); rotate on rotate_after only"
)


def read_rotation(key: Section, *, forbid_expiry: bool = False) -> Rotation | None:
    section = key.section("rotation", _ROTATION_FIELDS)
    if section is None:
        return None

    def duration(name: str, default: str | None = None) -> IsoDuration | None:
        text = section.text(name, required=default is None, default=default, check=duration_check)
        return None if text is None else parse_duration(text)  # type: ignore[return-value]

    retire = duration("retire_after", "") if section.raw("retire_after", False) is not MISSING else None
    if forbid_expiry:
        ok = True
        for name in ("expire_after", "notify_before"):
            if section.raw(name, False) is not MISSING:
                section.problem(name, _NO_EXPIRY)
                ok = False
        rotate = duration("rotate_after")
        if rotate and rotate.delta < MIN_ROTATE_AFTER:
            section.problem("rotate_after", f"{rotate} is below Key Vault's minimum of 7 days after creation")
            ok = False
        return Rotation(rotate, None, None, retire) if ok and rotate else None

    rotate, expire = duration("rotate_after"), duration("expire_after")
    notify = duration("notify_before", DEFAULT_NOTIFY_BEFORE)
    ok = None not in (rotate, expire, notify)
    if rotate and rotate.delta < MIN_ROTATE_AFTER:
        section.problem("rotate_after", f"{rotate} is below Key Vault's minimum of 7 days after creation")
        ok = False
    if expire and expire.delta < MIN_EXPIRE_AFTER:
        section.problem("expire_after", f"{expire} is below Key Vault's minimum expiry of 28 days")
        ok = False
    if rotate and expire and rotate.delta > expire.delta - MIN_ROTATE_BEFORE_EXPIRY:
        section.problem("rotate_after", f"{rotate} must be at least 7 days before expire_after ({expire})")
        ok = False
    if notify and notify.delta < MIN_NOTIFY_BEFORE:
        section.problem("notify_before", f"{notify} is below Key Vault's minimum of 7 days before expiry")
        ok = False
    if notify and expire and notify.delta >= expire.delta:
        section.problem("notify_before", f"{notify} must be shorter than expire_after ({expire})")
        ok = False
    return Rotation(rotate, expire, notify, retire) if ok else None  # type: ignore[arg-type]
