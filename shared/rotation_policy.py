"""Key Vault rotation policy rules: ISO-8601 durations and the service's documented minimums.

Kept in one place so the inventory validator, the fakes and the handlers agree with each other (and the contract
tests check they agree with the emulator, which keeps its own copy of the rules).
"""

from __future__ import annotations

from datetime import timedelta

import isodate

from shared.errors import InvalidInput
from shared.model import RotationActionType, RotationPolicy
from shared.untrusted import describe_value

MIN_ROTATE_AFTER_CREATE = timedelta(days=7)
MIN_ROTATE_BEFORE_EXPIRY = timedelta(days=7)
MIN_EXPIRES_IN = timedelta(days=28)
MIN_NOTIFY_BEFORE_EXPIRY = timedelta(days=7)
DEFAULT_NOTIFY_BEFORE_EXPIRY = timedelta(days=30)


def duration_to_timedelta(value: str) -> timedelta:
    """'P90D', 'P1Y', 'PT12H' -> timedelta; ValueError with a message a person can act on.

    Calendar units count as 30 days per month and 365 per year, the way a person reads `P1Y` against `P28D`; the
    inventory, the fakes and the compliance report all compare durations through this one function.
    """
    shown = describe_value(value, limit=60, quote=True)
    try:
        parsed = isodate.parse_duration(value.strip().upper() if isinstance(value, str) else value)
    except (isodate.ISO8601Error, ValueError, TypeError, AttributeError):
        raise ValueError(f"not an ISO-8601 duration ({shown}); write e.g. P90D") from None
    if isinstance(parsed, isodate.Duration):
        if parsed.years % 1 or parsed.months % 1:
            raise ValueError(f"fractional years or months are not supported ({shown})")
        parsed = parsed.tdelta + timedelta(days=int(parsed.years) * 365 + int(parsed.months) * 30)
    if parsed <= timedelta(0):
        raise ValueError(f"must be a positive duration ({shown})")
    return parsed


def timedelta_to_duration(value: timedelta) -> str:
    if value.seconds == 0 and value.microseconds == 0:
        return f"P{value.days}D"
    return isodate.duration_isoformat(value)


def validate_rotation_policy(policy: RotationPolicy, *, imported: bool = False) -> None:
    """Raise InvalidInput naming the field, as Key Vault answers 400 for a policy below its minimums; and, for a key
    imported from an on-premises HSM, for any Rotate action: the vault would generate the key's next version, which
    is then not the customer's material (the one thing Key Vault accepts that the app must never ask for)."""
    if imported and any(a.action == RotationActionType.ROTATE for a in policy.actions):
        raise InvalidInput(
            "lifetime_actions", "an imported key's rotation policy must not rotate: its versions are imported"
        )
    expires_in = None
    if policy.expires_in is not None:
        try:
            expires_in = duration_to_timedelta(policy.expires_in)
        except ValueError as exc:
            raise InvalidInput("expires_in", str(exc)) from None
        if expires_in < MIN_EXPIRES_IN:
            raise InvalidInput("expires_in", f"must be at least 28 days ({policy.expires_in})")
    for i, action in enumerate(policy.actions):
        where = f"lifetime_actions[{i}]"
        if (action.time_after_create is None) == (action.time_before_expiry is None):
            raise InvalidInput(where, "exactly one of time_after_create and time_before_expiry must be set")
        try:
            after = duration_to_timedelta(action.time_after_create) if action.time_after_create else None
            before = duration_to_timedelta(action.time_before_expiry) if action.time_before_expiry else None
        except ValueError as exc:
            raise InvalidInput(where, str(exc)) from None
        if after is not None and action.action == RotationActionType.NOTIFY:
            raise InvalidInput(f"{where}.time_after_create", "Notify supports only time_before_expiry")
        if after is not None and after < MIN_ROTATE_AFTER_CREATE:
            raise InvalidInput(f"{where}.time_after_create", "must be at least 7 days")
        if before is not None:
            if expires_in is None:
                raise InvalidInput(f"{where}.time_before_expiry", "needs expires_in on the policy")
            minimum = MIN_ROTATE_BEFORE_EXPIRY
            if before < minimum:
                raise InvalidInput(f"{where}.time_before_expiry", "must be at least 7 days")
            if before >= expires_in:
                raise InvalidInput(f"{where}.time_before_expiry", "must be shorter than expires_in")
        if after is not None and expires_in is not None and after > expires_in - MIN_ROTATE_BEFORE_EXPIRY:
            raise InvalidInput(f"{where}.time_after_create", "must leave at least 7 days before expiry")
