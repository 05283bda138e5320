"""The emulator process itself: ready line, start-up time, persistence across restart, clean stop, bad config."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from azure.keyvault.keys.crypto import KeyWrapAlgorithm

from tests.emulators.conftest import ADMINISTRATOR, CRYPTO_SERVICE_ENCRYPTION_USER, OPERATOR
from tests.support.emulators import REPO_ROOT, EmulatorError, Emulators, start_emulators

pytestmark = pytest.mark.emulator

SERVICE = "2b7c9d0e-3f4a-4b5c-8d6e-7f8091a2b3c4"
ALG = KeyWrapAlgorithm.rsa_oaep_256


def test_ready_line_describes_every_listener(emulators: Emulators) -> None:
    info = emulators.info
    assert info["ready"] is True
    assert info["arm_url"].startswith("https://127.0.0.1:")
    assert info["admin_url"] == info["arm_url"] + "/admin"
    assert info["eventgrid_topic_url"].startswith("http://127.0.0.1:") and info["eventgrid_topic_url"].endswith(
        "/api/events"
    )
    vault = info["vaults"]["kv-cmk-reference"]
    assert vault["url"].startswith("https://127.0.0.1:")
    assert vault["resource_id"].endswith(
        "/resourceGroups/rg-cmk-reference/providers/Microsoft.KeyVault/vaults/kv-cmk-reference"
    )
    assert Path(info["ca_cert"]).is_file()
    assert not Path(info["ca_cert"]).resolve().is_relative_to(REPO_ROOT)
    assert info["pid"] == emulators.process.pid
    ports = {
        url.rsplit(":", 1)[1].split("/")[0] for url in (info["arm_url"], info["eventgrid_topic_url"], vault["url"])
    }
    assert len(ports) == 3


def test_starts_in_under_two_seconds(emulators: Emulators) -> None:
    print(f"\nstart-up: {emulators.startup_seconds:.3f} s in-process, {emulators.ready_seconds:.3f} s spawn-to-ready")
    assert emulators.startup_seconds < 2.0
    assert emulators.ready_seconds < 3.0


def test_unwrap_round_trip_over_keep_alive_is_fast(emu: Emulators, admin_client) -> None:
    key = admin_client.create_rsa_key("cmk-rtt")
    crypto = emu.crypto_client(key.id, OPERATOR)
    blob = crypto.wrap_key(ALG, os.urandom(32)).encrypted_key
    crypto.unwrap_key(ALG, blob)
    samples = []
    for _ in range(50):
        started = time.perf_counter()
        crypto.unwrap_key(ALG, blob)
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    print(f"\nunwrap round trip over keep-alive: median {median:.2f} ms of 50")
    assert median < 20  # ~45 ms would mean Nagle/delayed-ACK (no TCP_NODELAY)


def test_reset_forgets_keys_and_assignments(emu: Emulators, admin_client, grant) -> None:
    admin_client.create_rsa_key("cmk-gone")
    emu.advance_clock(3600)
    emu.add_fault("503", operation="getkey", count=5)

    emu.reset()

    assert emu.admin("GET", "faults", expect=200)[1] == {"faults": []}
    assert abs(emu.clock()["timestamp"] - time.time()) < 60
    with emu.authorization_client(OPERATOR) as arm:
        assert list(arm.role_assignments.list_for_scope(emu.vault_resource_id())) == []
    grant(OPERATOR, ADMINISTRATOR, emu.vault_resource_id())
    assert list(admin_client.list_properties_of_keys()) == []


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_emulators(tmp_path / "run1", state_dir=state)
    try:
        with first.authorization_client(OPERATOR) as arm:
            for principal, role, scope in (
                (OPERATOR, ADMINISTRATOR, first.vault_resource_id()),
                (SERVICE, CRYPTO_SERVICE_ENCRYPTION_USER, first.key_scope("cmk-kept")),
            ):
                arm.role_assignments.create(
                    scope,
                    str(uuid.uuid4()),
                    {
                        "properties": {
                            "roleDefinitionId": f"/subscriptions/{first.subscription_id}/providers/"
                            f"Microsoft.Authorization/roleDefinitions/{role}",
                            "principalId": principal,
                        }
                    },
                )
        with first.key_client(OPERATOR) as client:
            key = client.create_rsa_key("cmk-kept", hardware_protected=True)
        dek = os.urandom(32)
        blob = first.crypto_client(key, OPERATOR).wrap_key(ALG, dek).encrypted_key
        moved = first.advance_clock(iso="P10D")["timestamp"]
    finally:
        assert first.stop() == 0
    assert (state / "emulators-state.json").is_file()

    second = start_emulators(tmp_path / "run2", state_dir=state)
    try:
        assert second.clock()["timestamp"] >= moved
        with second.key_client(SERVICE) as client:
            kept = client.get_key("cmk-kept")
        assert kept.properties.version == key.properties.version
        assert kept.id.endswith(f"/keys/cmk-kept/{key.properties.version}")
        assert second.crypto_client(kept.id, SERVICE).unwrap_key(ALG, blob).key == dek
    finally:
        assert second.stop() == 0


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    running = start_emulators(tmp_path)
    running.process.terminate()
    assert running.process.wait(10) == 0
    running.stop()


def test_bad_config_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError) as caught:
        start_emulators(tmp_path, {"vaults": [{"name": "x", "resource_group": "rg"}]})
    assert "vaults[0].name" in str(caught.value)
    config = tmp_path / "bad.json"
    config.write_text('{"throttling": {"capacity": 0}}')
    result = subprocess.run(
        [sys.executable, "-m", "emulators", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "throttling.capacity" in result.stderr


def test_two_vaults_get_their_own_listeners(tmp_path: Path) -> None:
    config = {
        "tenant_id": "11111111-2222-4333-8444-555555555555",
        "vaults": [{"name": "kv-one", "resource_group": "rg-a"}, {"name": "kv-two", "resource_group": "rg-b"}],
    }
    running = start_emulators(tmp_path, config)
    try:
        assert running.tenant_id == config["tenant_id"]
        assert running.vault_url("kv-one") != running.vault_url("kv-two")
        assert "/resourceGroups/rg-b/" in running.vault_resource_id("kv-two")
        with running.authorization_client(OPERATOR) as arm:
            arm.role_assignments.create(
                running.vault_resource_id("kv-two"),
                "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
                {
                    "properties": {
                        "roleDefinitionId": f"/subscriptions/{running.subscription_id}/providers/"
                        f"Microsoft.Authorization/roleDefinitions/{ADMINISTRATOR}",
                        "principalId": OPERATOR,
                    }
                },
            )
        with running.key_client(OPERATOR, "kv-two") as two, running.key_client(OPERATOR, "kv-one") as one:
            assert two.create_rsa_key("only-here").id.startswith(running.vault_url("kv-two"))
            with pytest.raises(Exception) as caught:
                one.get_key("only-here")
            assert getattr(caught.value, "status_code", None) == 403  # no grant on kv-one
    finally:
        running.stop()
