"""App settings: all the app reads are in local.settings.sample.json, documented; bad values name the setting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.bootstrap import Container
from shared.errors import InvalidInput, InvalidSetting
from shared.settings import Settings, is_loopback, require_local_for_insecure

ROOT = Path(__file__).resolve().parents[2]


def test_sample_settings_list_and_document_every_setting_the_app_reads():
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())
    source = "".join(
        (ROOT / f).read_text() for f in ("shared/settings.py", "shared/http/callers.py", "function_app.py")
    )
    read = set(re.findall(r'get\("([A-Z][A-Za-z_]+)"', source)) | set(
        re.findall(r'environ\.get\("([A-Za-z_]+)"', source)
    )
    assert read, "no settings found: the pattern is stale"
    assert read <= set(sample["Values"]), read - set(sample["Values"])
    assert set(sample["Values"]) <= set(sample["Documentation"])


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"CMK_CREDENTIAL": "password"}, "CMK_CREDENTIAL"),
        ({"CMK_CREDENTIAL": "emulator"}, "CMK_CREDENTIAL"),  # the local run uses the managed-identity path too
        ({"CMK_VERIFY_CHALLENGE_RESOURCE": "maybe"}, "CMK_VERIFY_CHALLENGE_RESOURCE"),
        ({"CMK_ARM_ENDPOINT": "http://management.azure.com"}, "CMK_ARM_ENDPOINT"),
        ({"CMK_CA_BUNDLE": "/no/such/file.pem"}, "CMK_CA_BUNDLE"),
        ({"CMK_FOLLOW_UP_SECONDS": "0"}, "CMK_FOLLOW_UP_SECONDS"),
        ({"CMK_RBAC_PROPAGATION_SECONDS": "ten"}, "CMK_RBAC_PROPAGATION_SECONDS"),
    ],
)
def test_bad_settings_name_the_setting(env, field):
    with pytest.raises(InvalidInput) as err:
        Settings.from_env(env)
    assert err.value.field == field


def test_defaults():
    s = Settings.from_env({})
    assert s.credential == "default" and s.verify_challenge_resource is True
    assert s.inventory_path == ROOT / "inventory/reference.yaml" and s.inventory_path.is_file()
    assert s.sweep_schedule == "0 0 * * * *" and s.connection_verify is True
    assert s.rbac_propagation_seconds == 600 and s.follow_up_seconds == 600


def test_the_follow_up_interval_defaults_to_the_propagation_time_and_may_be_shorter():
    assert Settings.from_env({"CMK_RBAC_PROPAGATION_SECONDS": "900"}).follow_up_seconds == 900
    s = Settings.from_env({"CMK_RBAC_PROPAGATION_SECONDS": "600", "CMK_FOLLOW_UP_SECONDS": "3"})
    assert (s.rbac_propagation_seconds, s.follow_up_seconds) == (600, 3)


AZURE_VAULT = "https://kv-cmk-reference.vault.azure.net"


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:8442", "https://localhost:8442", "https://[::1]:8442", "http://127.0.0.1:9/x"]
)
def test_loopback_endpoints_are_the_local_run(url):
    assert is_loopback(url)


@pytest.mark.parametrize(
    "url", [AZURE_VAULT, "https://127.0.0.1.example.com", "https://localhost.evil.net", "https://10.0.0.1", "nonsense"]
)
def test_other_endpoints_are_not(url):
    assert not is_loopback(url)


def test_challenge_resource_check_may_be_off_only_against_loopback_vaults():
    relaxed = Settings.from_env({"CMK_VERIFY_CHALLENGE_RESOURCE": "false"})
    require_local_for_insecure(relaxed, vault_urls=["https://127.0.0.1:8442", "https://localhost:9"])
    with pytest.raises(InvalidSetting) as err:
        require_local_for_insecure(relaxed, vault_urls=["https://127.0.0.1:8442", AZURE_VAULT])
    assert err.value.field == "CMK_VERIFY_CHALLENGE_RESOURCE"
    assert AZURE_VAULT in err.value.reason
    require_local_for_insecure(Settings.from_env({}), vault_urls=[AZURE_VAULT])  # the default checks: fine anywhere


@pytest.mark.parametrize("endpoint", ["http://egt.westeurope-1.eventgrid.azure.net/api/events", "ftp://x/api"])
def test_a_clear_text_alert_topic_is_refused_outside_the_local_run(endpoint):
    with pytest.raises(InvalidSetting) as err:
        require_local_for_insecure(Settings.from_env({}), alert_endpoint=endpoint)
    assert err.value.field == "CMK_ALERT_TOPIC_ENDPOINT"
    assert endpoint in err.value.reason


def test_a_clear_text_alert_topic_is_fine_on_loopback_and_https_everywhere():
    settings = Settings.from_env({})
    require_local_for_insecure(settings, alert_endpoint="http://127.0.0.1:8441/api/events")
    require_local_for_insecure(settings, alert_endpoint="https://egt.westeurope-1.eventgrid.azure.net/api/events")


def test_the_container_refuses_before_it_builds_an_sdk_client(monkeypatch):
    """The wiring calls the check: a relaxed challenge check with the reference inventory's Azure vault is refused."""
    monkeypatch.delenv("CMK_VAULT_URL", raising=False)
    monkeypatch.delenv("CMK_ALERT_TOPIC", raising=False)
    container = Container(Settings.from_env({"CMK_VERIFY_CHALLENGE_RESOURCE": "false"}))
    with pytest.raises(InvalidSetting) as err:
        _ = container.vault
    assert err.value.field == "CMK_VERIFY_CHALLENGE_RESOURCE"
    clear = Container(Settings.from_env({"CMK_ALERT_TOPIC_ENDPOINT": "http://egt.eventgrid.azure.net/api/events"}))
    with pytest.raises(InvalidSetting) as err:
        _ = clear.publisher
    assert err.value.field == "CMK_ALERT_TOPIC_ENDPOINT"
