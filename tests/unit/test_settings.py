"""App settings: all the app reads are in local.settings.sample.json, documented; bad values name the setting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.errors import InvalidInput
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_sample_settings_list_and_document_every_setting_the_app_reads():
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())
    source = (ROOT / "shared/settings.py").read_text() + (ROOT / "function_app.py").read_text()
    read = set(re.findall(r'get\("([A-Za-z_]+)"', source)) | set(re.findall(r'environ\.get\("([A-Za-z_]+)"', source))
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
