"""What real Key Vault answers (from the Azure SDK's recorded live tests), reproduced by the emulator and asserted
through the unchanged azure-keyvault-keys client: the default Notify action of a saved rotation policy, the order of
version listings, and the attributes every key carries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from azure.core.rest import HttpRequest
from azure.keyvault.keys import KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

from tests.emulators.conftest import ADMINISTRATOR, OPERATOR
from tests.support.emulators import Emulators, start_emulators

pytestmark = pytest.mark.emulator


def actions_of(policy: KeyRotationPolicy) -> list[tuple[str, str | None, str | None]]:
    return [
        (KeyRotationPolicyAction(a.action).value.lower(), a.time_after_create, a.time_before_expiry)
        for a in policy.lifetime_actions
    ]


def raw_get(client: KeyClient, path: str, api: str = "2025-07-01") -> dict:
    response = client.send_request(HttpRequest("GET", f"{client.vault_url}{path}?api-version={api}"))
    assert response.status_code == 200, response.text()
    return json.loads(response.text())


def test_policy_without_notify_is_saved_with_the_default_notify_thirty_days_before_expiry(
    admin_client: KeyClient,
) -> None:
    admin_client.create_rsa_key("cmk-policy")
    rotate = KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P2M")

    saved = admin_client.update_key_rotation_policy("cmk-policy", KeyRotationPolicy(), lifetime_actions=[rotate])

    expected = [("rotate", "P2M", None), ("notify", None, "P30D")]  # the given action first, then the default
    assert actions_of(saved) == expected
    read_back = admin_client.get_key_rotation_policy("cmk-policy")
    assert actions_of(read_back) == expected
    assert read_back.created_on is not None and read_back.updated_on is not None
    assert read_back.expires_in is None


def test_empty_policy_comes_back_as_the_default_notify(admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-empty-policy")
    saved = admin_client.update_key_rotation_policy("cmk-empty-policy", KeyRotationPolicy(), lifetime_actions=[])
    assert actions_of(saved) == [("notify", None, "P30D")]


def test_an_explicit_notify_replaces_the_default(admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-notify")
    notify = KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P60D")
    saved = admin_client.update_key_rotation_policy(
        "cmk-notify", KeyRotationPolicy(), lifetime_actions=[notify], expires_in="P90D"
    )
    assert actions_of(saved) == [("notify", None, "P60D")]
    assert admin_client.get_key_rotation_policy("cmk-notify").expires_in == "P90D"


def test_versions_are_listed_in_version_id_order_across_pages(admin_client: KeyClient) -> None:
    created = [admin_client.create_rsa_key("cmk-versions").properties.version for _ in range(7)]

    listed = [p.version for p in admin_client.list_properties_of_key_versions("cmk-versions", max_page_size=3)]

    assert listed == sorted(created)
    assert set(listed) == set(created)
    first_page = raw_get(admin_client, "/keys/cmk-versions/versions", api="2025-07-01&maxresults=3")
    assert len(first_page["value"]) == 3 and first_page["nextLink"]


def test_attributes_carry_key_size_recovery_fields_exportable_and_hsm_platform(admin_client: KeyClient) -> None:
    hsm = admin_client.create_rsa_key("cmk-hsm", size=3072, hardware_protected=True)
    soft = admin_client.create_rsa_key("cmk-soft")

    assert hsm.properties.hsm_platform == "2"
    assert soft.properties.hsm_platform == "0"
    attributes = raw_get(admin_client, "/keys/cmk-soft/")["attributes"]
    assert list(attributes) == [
        "enabled",
        "key_size",
        "created",
        "updated",
        "recoveryLevel",
        "recoverableDays",
        "exportable",
        "hsmPlatform",
    ]
    assert attributes["key_size"] == 2048 and attributes["exportable"] is False
    assert raw_get(admin_client, "/keys/cmk-hsm/")["attributes"]["key_size"] == 3072
    listed = raw_get(admin_client, "/keys/cmk-soft/versions")["value"][0]["attributes"]
    assert listed["hsmPlatform"] == "0" and listed["recoverableDays"] == 90


def test_api_7_4_answers_without_hsm_platform(emu: Emulators, admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-old-api", hardware_protected=True)
    with emu.key_client(OPERATOR, api_version="7.4") as old:
        key = old.get_key("cmk-old-api")
        assert key.properties.hsm_platform is None
        assert "hsmPlatform" not in raw_get(old, "/keys/cmk-old-api/", api="7.4")["attributes"]


@pytest.fixture
def seven_day_vault(tmp_path) -> Iterator[Emulators]:
    """A vault configured like the recordings' one: 7 days' retention, no purge protection."""
    vault = {"name": "kv-recorded", "resource_group": "rg-recorded", "soft_delete_retention_days": 7}
    running = start_emulators(tmp_path, {"vaults": [{**vault, "purge_protection": False}]})
    try:
        yield running
    finally:
        running.stop()


def test_soft_delete_attributes_and_purge_follow_the_vault_configuration(seven_day_vault: Emulators) -> None:
    emu = seven_day_vault
    with emu.authorization_client(OPERATOR) as arm:
        arm.role_assignments.create(
            emu.vault_resource_id(),
            str(uuid.uuid4()),
            {
                "properties": {
                    "roleDefinitionId": f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{ADMINISTRATOR}",
                    "principalId": OPERATOR,
                    "principalType": "User",
                }
            },
        )
    with emu.key_client(OPERATOR) as client:
        key = client.create_rsa_key("cmk-seven-days")
        assert (key.properties.recoverable_days, key.properties.recovery_level) == (
            7,
            "CustomizedRecoverable+Purgeable",
        )
        deleted = client.begin_delete_key("cmk-seven-days").result()
        assert (deleted.scheduled_purge_date - deleted.deleted_date).days == 7
        client.purge_deleted_key("cmk-seven-days")
        assert [d.name for d in client.list_deleted_keys()] == []
