"""Rotation policy parsing and Key Vault's documented minimums (no emulator process needed)."""

from __future__ import annotations

import pytest

from emulators.rotation_policy import DAY, PolicyError, default_policy, duration_seconds, parse_policy


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("P90D", 90 * DAY),
        ("P3M", 90 * DAY),
        ("P1Y10D", 375 * DAY),
        ("PT48H", 2 * DAY),
        ("P2W", 14 * DAY),
        ("PT1H30M5S", 5405),
        ("p7d", 7 * DAY),
    ],
)
def test_iso_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "90D", "P1.5D", "P-1D", "PT1D", "P1H"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)


def policy(*actions: tuple[str, str, str], expiry: str | None = "P90D") -> dict:
    body: dict = {"lifetimeActions": [{"trigger": {t: v}, "action": {"type": a}} for a, t, v in actions]}
    if expiry:
        body["attributes"] = {"expiryTime": expiry}
    return body


def test_valid_policy_round_trips() -> None:
    parsed = parse_policy(policy(("Rotate", "timeBeforeExpiry", "P7D"), ("notify", "timeBeforeExpiry", "P30D")))
    assert parsed.rotate_action().time_before_expiry == "P7D"
    assert parsed.notify_before_expiry_seconds() == 30 * DAY
    assert parsed.expiry_seconds() == 90 * DAY
    shown = parsed.to_json("https://vault/keys/k/rotationpolicy")
    assert shown["lifetimeActions"][1]["action"]["type"] == "Notify"
    assert shown["attributes"]["expiryTime"] == "P90D"


def test_default_policy_notifies_thirty_days_before_expiry() -> None:
    assert default_policy().notify_before_expiry_seconds() == 30 * DAY
    assert default_policy().rotate_action() is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (policy(("Rotate", "timeAfterCreate", "P6D")), "lifetimeActions[0].trigger.timeAfterCreate"),
        (policy(("Rotate", "timeBeforeExpiry", "P6D")), "lifetimeActions[0].trigger.timeBeforeExpiry"),
        (policy(("Rotate", "timeAfterCreate", "P30D"), expiry="P27D"), "attributes.expiryTime"),
        (policy(("Rotate", "timeBeforeExpiry", "P7D"), expiry=None), "attributes.expiryTime"),
        (policy(("Rotate", "timeAfterCreate", "P85D")), "lifetimeActions[0].trigger.timeAfterCreate"),
        (policy(("Notify", "timeAfterCreate", "P30D")), "lifetimeActions[0].trigger.timeAfterCreate"),
        (policy(("Notify", "timeBeforeExpiry", "P90D")), "lifetimeActions[0].trigger.timeBeforeExpiry"),
        (policy(("Explode", "timeAfterCreate", "P30D")), "lifetimeActions[0].action.type"),
        (policy(("Rotate", "timeAfterCreate", "P30D"), ("Rotate", "timeAfterCreate", "P40D")), "action.type"),
        (policy(("Rotate", "timeAfterCreate", "soon")), "lifetimeActions[0].trigger.timeAfterCreate"),
        ({"lifetimeActions": [{"trigger": {}, "action": {"type": "Rotate"}}]}, "lifetimeActions[0].trigger"),
        ({"attributes": []}, "attributes"),
    ],
)
def test_refusals_name_the_field(body: dict, field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(body)
    assert field in caught.value.field or field in str(caught.value)
