"""The movable clock drives Key Vault's own lifecycle: near-expiry and expiry events, policy rotation."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from azure.keyvault.keys import KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

from tests.emulators.webhook_receiver import WebhookReceiver
from tests.support.emulators import Emulators

pytestmark = pytest.mark.emulator

DAY = 86400
PREFIX = "Microsoft.KeyVault."


@pytest.fixture
def receiver(emu: Emulators):
    with WebhookReceiver() as hook:
        emu.admin(
            "POST",
            "eventgrid/subscriptions",
            {
                "name": "kv-events",
                "endpoint": hook.url,
                "topic": emu.vault_resource_id(),
                "event_types": [PREFIX + t for t in ("KeyNewVersionCreated", "KeyNearExpiry", "KeyExpired")],
            },
            expect=201,
        )
        yield hook


def test_policy_rotates_before_expiry_and_events_reach_the_subscriber(
    emu: Emulators, admin_client: KeyClient, receiver: WebhookReceiver
) -> None:
    expires = int(emu.clock()["timestamp"]) + 60 * DAY
    first = admin_client.create_rsa_key("cmk-tt", hardware_protected=True, expires_on=_utc(expires))
    admin_client.update_key_rotation_policy(
        "cmk-tt",
        KeyRotationPolicy(),
        lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_before_expiry="P7D"),
            KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P30D"),
        ],
        expires_in="P90D",
    )
    created = receiver.wait_for(lambda evs: any(e["eventType"].endswith("KeyNewVersionCreated") for e in evs))
    event = next(e for e in created if e["eventType"] == PREFIX + "KeyNewVersionCreated")
    assert event["subject"] == "cmk-tt"
    assert event["topic"].lower() == emu.vault_resource_id().lower()
    assert event["data"]["Id"] == first.id
    assert event["data"]["Version"] == first.properties.version
    assert event["data"]["VaultName"] == "kv-cmk-reference"
    assert event["data"]["ObjectType"] == "Key" and event["data"]["ObjectName"] == "cmk-tt"
    assert event["data"]["EXP"] == expires

    emu.advance_clock(29 * DAY)  # 31 days before expiry: nothing due yet
    time.sleep(0.3)
    assert receiver.of_type("KeyNearExpiry") == []

    emu.advance_clock(2 * DAY)  # 29 days before expiry: past the Notify point (30 days)
    near = receiver.wait_for(lambda evs: any(e["eventType"].endswith("KeyNearExpiry") for e in evs))
    near_expiry = [e for e in near if e["eventType"] == PREFIX + "KeyNearExpiry"]
    assert [e["data"]["Version"] for e in near_expiry] == [first.properties.version]
    assert admin_client.get_key("cmk-tt").id == first.id  # Notify does not rotate

    emu.advance_clock(23 * DAY)  # 6 days before expiry: past the Rotate point (7 days)
    current = admin_client.get_key("cmk-tt")
    assert current.id != first.id
    assert current.key_type == first.key_type and len(current.key.n) == len(first.key.n)
    now = emu.clock()["timestamp"]
    assert abs(current.properties.expires_on.timestamp() - (now + 90 * DAY)) < 60
    receiver.wait_for(
        lambda evs: any(
            e["eventType"] == PREFIX + "KeyNewVersionCreated" and e["data"]["Version"] == current.properties.version
            for e in evs
        )
    )

    emu.advance_clock(7 * DAY)  # past the first version's expiry
    expired = receiver.wait_for(lambda evs: any(e["eventType"].endswith("KeyExpired") for e in evs))
    assert [e["data"]["Version"] for e in expired if e["eventType"] == PREFIX + "KeyExpired"] == [
        first.properties.version
    ]
    assert len(receiver.of_type("KeyNearExpiry")) == 1  # once per version, not once per clock move


def test_rotation_after_create_and_clock_admin(emu: Emulators, admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-tac")
    admin_client.update_key_rotation_policy(
        "cmk-tac",
        KeyRotationPolicy(),
        lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")],
        expires_in="P60D",
    )
    before = emu.clock()["timestamp"]
    moved = emu.advance_clock(iso="P29D")
    assert abs(moved["timestamp"] - before - 29 * DAY) < 5
    assert len(list(admin_client.list_properties_of_key_versions("cmk-tac"))) == 1

    emu.set_clock(dt.datetime.fromtimestamp(before + 31 * DAY, tz=dt.UTC).isoformat())
    assert len(list(admin_client.list_properties_of_key_versions("cmk-tac"))) == 2

    status, body = emu.admin("POST", "clock", {"set": "2000-01-01T00:00:00Z"})
    assert status == 400 and "set" in body["error"]["message"]  # the clock only moves forward


def _utc(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
