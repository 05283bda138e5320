"""Key rotation policies as Key Vault holds them: lifetime actions (Rotate / Notify) and the new versions' expiry.

Validation follows the documented minimums so the emulator refuses what Azure refuses: rotate no earlier than 7
days after creation and no later than 7 days before expiry, expiryTime at least 28 days (and required for a Rotate
before expiry), Notify only before expiry.
Durations are ISO-8601 (P90D, P3M, PT48H, P1Y10D); months count as 30 days and years as 365, which is how the
minimums are compared too.
A policy saved without a Notify action is stored and answered with the service's default Notify 30 days before expiry
appended after the given actions, as recorded from real Key Vault (even when the policy sets no expiryTime), so code
that reads a policy back never sees "no notification" where Azure would send one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0
MIN_ROTATE_SECONDS = 7 * DAY
MIN_EXPIRY_SECONDS = 28 * DAY
DEFAULT_NOTIFY_BEFORE_EXPIRY = "P30D"

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class PolicyError(ValueError):
    """A policy Key Vault would refuse; `field` names the offending JSON field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def duration_seconds(text: str) -> float:
    """Seconds in an ISO-8601 duration; ValueError when it is not one."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not an ISO-8601 duration ({text!r})")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return (
        parts["y"] * 365 * DAY
        + parts["mo"] * 30 * DAY
        + parts["w"] * 7 * DAY
        + parts["d"] * DAY
        + parts["h"] * 3600
        + parts["mi"] * 60
        + parts["s"]
    )


@dataclass(frozen=True)
class LifetimeAction:
    action: str  # "Rotate" | "Notify"
    time_after_create: str | None = None
    time_before_expiry: str | None = None

    def to_json(self) -> dict[str, Any]:
        trigger: dict[str, str] = {}
        if self.time_after_create:
            trigger["timeAfterCreate"] = self.time_after_create
        if self.time_before_expiry:
            trigger["timeBeforeExpiry"] = self.time_before_expiry
        return {"trigger": trigger, "action": {"type": self.action}}


@dataclass
class RotationPolicy:
    lifetime_actions: list[LifetimeAction] = field(default_factory=list)
    expiry_time: str | None = None
    created: int | None = None
    updated: int | None = None

    def rotate_action(self) -> LifetimeAction | None:
        return next((a for a in self.lifetime_actions if a.action == "Rotate"), None)

    def notify_before_expiry_seconds(self) -> float:
        notify = next((a for a in self.lifetime_actions if a.action == "Notify"), None)
        text = notify.time_before_expiry if notify and notify.time_before_expiry else DEFAULT_NOTIFY_BEFORE_EXPIRY
        return duration_seconds(text)

    def expiry_seconds(self) -> float | None:
        return duration_seconds(self.expiry_time) if self.expiry_time else None

    def to_json(self, policy_id: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        if self.expiry_time:
            attributes["expiryTime"] = self.expiry_time
        if self.created is not None:
            attributes["created"] = self.created
        if self.updated is not None:
            attributes["updated"] = self.updated
        return {
            "id": policy_id,
            "lifetimeActions": [a.to_json() for a in self.lifetime_actions],
            "attributes": attributes,
        }

    def to_state(self) -> dict[str, Any]:
        return self.to_json("")

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> RotationPolicy:
        policy = parse_policy(data)
        attributes = data.get("attributes") or {}
        policy.created = attributes.get("created")
        policy.updated = attributes.get("updated")
        return policy


def default_policy() -> RotationPolicy:
    """What Key Vault returns for a key that never had a policy set: notify 30 days before expiry."""
    return RotationPolicy([LifetimeAction("Notify", time_before_expiry=DEFAULT_NOTIFY_BEFORE_EXPIRY)])


def _duration_field(value: Any, name: str) -> float:
    try:
        return duration_seconds(value)
    except ValueError:
        raise PolicyError(name, f"not an ISO-8601 duration ({value!r})") from None


def parse_policy(body: Any) -> RotationPolicy:
    """A RotationPolicy from the PUT body; PolicyError naming the field on anything Key Vault would refuse."""
    if not isinstance(body, dict):
        raise PolicyError("body", "expected a JSON object")
    attributes = {} if body.get("attributes") is None else body["attributes"]
    if not isinstance(attributes, dict):
        raise PolicyError("attributes", "expected a JSON object")
    expiry_time = attributes.get("expiryTime")
    expiry_seconds: float | None = None
    if expiry_time is not None:
        expiry_seconds = _duration_field(expiry_time, "attributes.expiryTime")
        if expiry_seconds < MIN_EXPIRY_SECONDS:
            raise PolicyError("attributes.expiryTime", f"must be at least 28 days (P28D), got {expiry_time!r}")
    raw_actions = [] if body.get("lifetimeActions") is None else body["lifetimeActions"]
    if not isinstance(raw_actions, list):
        raise PolicyError("lifetimeActions", "expected a list")
    actions: list[LifetimeAction] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_actions):
        where = f"lifetimeActions[{i}]"
        if not isinstance(raw, dict):
            raise PolicyError(where, "expected a JSON object")
        kind = str(((raw.get("action") or {}).get("type")) or "")
        kind = {"rotate": "Rotate", "notify": "Notify"}.get(kind.lower(), "")
        if not kind:
            raise PolicyError(f"{where}.action.type", "must be Rotate or Notify")
        if kind in seen:
            raise PolicyError(f"{where}.action.type", f"only one {kind} action is allowed")
        seen.add(kind)
        trigger = {} if raw.get("trigger") is None else raw["trigger"]
        if not isinstance(trigger, dict):
            raise PolicyError(f"{where}.trigger", "expected a JSON object")
        after = trigger.get("timeAfterCreate")
        before = trigger.get("timeBeforeExpiry")
        if (after is None) == (before is None):
            raise PolicyError(f"{where}.trigger", "set exactly one of timeAfterCreate and timeBeforeExpiry")
        if after is not None:
            if kind == "Notify":
                raise PolicyError(f"{where}.trigger.timeAfterCreate", "Notify supports only timeBeforeExpiry")
            seconds = _duration_field(after, f"{where}.trigger.timeAfterCreate")
            if seconds < MIN_ROTATE_SECONDS:
                raise PolicyError(f"{where}.trigger.timeAfterCreate", f"must be at least 7 days (P7D), got {after!r}")
            if expiry_seconds is not None and seconds > expiry_seconds - MIN_ROTATE_SECONDS:
                raise PolicyError(
                    f"{where}.trigger.timeAfterCreate",
                    "must be at least 7 days before attributes.expiryTime",
                )
        if before is not None:
            seconds = _duration_field(before, f"{where}.trigger.timeBeforeExpiry")
            if kind == "Rotate" and seconds < MIN_ROTATE_SECONDS:
                raise PolicyError(f"{where}.trigger.timeBeforeExpiry", f"must be at least 7 days (P7D), got {before!r}")
            if seconds <= 0:
                raise PolicyError(f"{where}.trigger.timeBeforeExpiry", "must be a positive duration")
            if kind == "Rotate" and expiry_seconds is None:
                raise PolicyError("attributes.expiryTime", "is required when Rotate uses timeBeforeExpiry")
            if expiry_seconds is not None and seconds >= expiry_seconds:
                raise PolicyError(f"{where}.trigger.timeBeforeExpiry", "must be shorter than attributes.expiryTime")
        actions.append(LifetimeAction(kind, time_after_create=after, time_before_expiry=before))
    if "Notify" not in seen:
        actions.append(LifetimeAction("Notify", time_before_expiry=DEFAULT_NOTIFY_BEFORE_EXPIRY))
    return RotationPolicy(actions, expiry_time=expiry_time)
