"""The local run's two storage modes, as the app and the devhost get them: a connection string, or identity-only
storage (no AzureWebJobsStorage at all, the app's managed identity by client id, the HTTPS service URIs, the CA for
the devhost). The running system in identity mode is tests/e2e/test_deployed_shape_over_the_wire.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from localrun.cloud import Cloud, Identities
from localrun.system import LocalSystem

ENDPOINTS = {
    name: f"https://127.0.0.1:{port}/devstoreaccount1" for name, port in (("blob", 1), ("queue", 2), ("table", 3))
}


def _system(tmp_path: Path, storage: str) -> LocalSystem:
    system = LocalSystem(tmp_path, storage=storage)
    system.cloud = Cloud(
        {"ca_cert": "/run/ca.pem"},
        Identities(*(f"{i}" * 8 for i in range(5))),
        "rg",
        app_identity={"client_id": "0f9e3a52-5c2b-4f0a-9a71-1d2c3b4a5e6f"},
    )
    system.storage_connection = "DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;"
    system.storage_endpoints = ENDPOINTS
    return system


def test_identity_storage_gives_no_connection_string_and_the_hosts_identity_settings(tmp_path):
    settings = _system(tmp_path, "identity").storage_settings()
    assert "AzureWebJobsStorage" not in settings
    assert settings == {
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "0f9e3a52-5c2b-4f0a-9a71-1d2c3b4a5e6f",
        "AzureWebJobsStorage__blobServiceUri": ENDPOINTS["blob"],
        "AzureWebJobsStorage__queueServiceUri": ENDPOINTS["queue"],
        "AzureWebJobsStorage__tableServiceUri": ENDPOINTS["table"],
        "DEVHOST_CA_BUNDLE": "/run/ca.pem",
    }


def test_connection_string_storage_is_the_default(tmp_path):
    assert LocalSystem(tmp_path).storage == "connection-string"
    assert _system(tmp_path, "connection-string").storage_settings() == {
        "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;"
    }


def test_an_unknown_mode_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        LocalSystem(tmp_path / "run", storage="sas").up()
    assert not (tmp_path / "run").exists()
