"""Who may call the Key Vault emulator: the 401 challenge, bearer tokens naming principals, RBAC from ARM."""

from __future__ import annotations

import os

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import KeyWrapAlgorithm

from tests.emulators.conftest import CRYPTO_SERVICE_ENCRYPTION_USER, CRYPTO_USER, OPERATOR, Grant
from tests.support.emulators import Emulators

pytestmark = pytest.mark.emulator

SERVICE = "0f6a2c51-7d84-4e2b-b5c1-3a9d8e7f6b21"  # e.g. a MySQL server's managed identity
STRANGER = "9d3e4f5a-1b2c-4d6e-8f70-a1b2c3d4e5f6"


class StatusRecorder:
    """A raw_response_hook (it runs after the challenge policy): every response's status and WWW-Authenticate."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str | None]] = []

    def __call__(self, response) -> None:
        http = response.http_response
        self.seen.append((http.status_code, http.headers.get("WWW-Authenticate")))


def test_first_request_gets_the_key_vault_challenge(emu: Emulators, admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-challenge")
    recorder = StatusRecorder()
    # The SDK caches a vault's challenge per host for the whole process: "localhost" is a host no other test uses.
    fresh_host = emu.vault_url().replace("127.0.0.1", "localhost")
    with KeyClient(
        fresh_host,
        emu.credential(OPERATOR),
        verify_challenge_resource=False,
        connection_verify=emu.ca_cert,
        raw_response_hook=recorder,
    ) as fresh:
        assert fresh.get_key("cmk-challenge").name == "cmk-challenge"
        fresh.get_key("cmk-challenge")

    statuses = [status for status, _ in recorder.seen]
    assert statuses == [401, 200, 200]  # one challenge per host, then tokens
    challenge = recorder.seen[0][1]
    assert challenge == (
        f'Bearer authorization="https://login.microsoftonline.com/{emu.tenant_id}", resource="https://vault.azure.net"'
    )


def test_unsupported_api_version_is_refused(emu: Emulators, admin_client: KeyClient) -> None:
    with emu.key_client(OPERATOR, api_version="7.3") as old, pytest.raises(HttpResponseError) as caught:
        old.get_key("anything")
    assert caught.value.status_code == 400
    assert "7.3" in caught.value.message


def test_key_scoped_grant_reaches_that_key_only_until_revoked(emu: Emulators, admin_client: KeyClient, grant: Grant):
    key_a = admin_client.create_rsa_key("cmk-a")
    key_b = admin_client.create_rsa_key("cmk-b")
    dek = os.urandom(32)
    wrapped_a = emu.crypto_client(key_a, OPERATOR).wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
    wrapped_b = emu.crypto_client(key_b, OPERATOR).wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
    assignment = grant(SERVICE, CRYPTO_SERVICE_ENCRYPTION_USER, emu.key_scope("cmk-a"))

    service_a = emu.crypto_client(key_a.id, SERVICE)
    service_b = emu.crypto_client(key_b.id, SERVICE)
    assert service_a.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped_a.encrypted_key).key == dek
    with pytest.raises(HttpResponseError) as denied:
        service_b.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped_b.encrypted_key)
    assert denied.value.status_code == 403
    error = denied.value.response.json()["error"]
    assert (error["code"], error["innererror"]["code"]) == ("Forbidden", "ForbiddenByRbac")
    assert SERVICE in error["message"]
    assert "Microsoft.KeyVault/vaults/keys/unwrap/action" in error["message"]
    assert emu.key_scope("cmk-b").lower() in error["message"]

    with emu.authorization_client(OPERATOR) as arm:
        arm.role_assignments.delete(emu.key_scope("cmk-a"), assignment)
    with pytest.raises(HttpResponseError) as revoked:
        service_a.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped_a.encrypted_key)
    assert revoked.value.status_code == 403


def test_vault_scoped_crypto_user_reaches_every_key(emu: Emulators, admin_client: KeyClient, grant: Grant) -> None:
    keys = [admin_client.create_rsa_key(name) for name in ("cmk-x", "cmk-y")]
    grant(SERVICE, CRYPTO_USER, emu.vault_resource_id())
    dek = os.urandom(32)

    for key in keys:
        crypto = emu.crypto_client(key.id, SERVICE)
        wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
        assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek
    with emu.key_client(SERVICE) as client:
        assert client.get_key("cmk-y").id == keys[1].id
        with pytest.raises(HttpResponseError) as caught:  # Crypto User may not create keys
            client.create_rsa_key("cmk-z")
    assert caught.value.status_code == 403
    assert "keys/create/action" in caught.value.message


def test_caller_without_any_role_is_refused_everything(emu: Emulators, admin_client: KeyClient) -> None:
    admin_client.create_rsa_key("cmk-private")
    with emu.key_client(STRANGER) as client:
        for call in (lambda: client.get_key("cmk-private"), lambda: list(client.list_properties_of_keys())):
            with pytest.raises(HttpResponseError) as caught:
                call()
            assert caught.value.status_code == 403
            assert caught.value.response.json()["error"]["innererror"]["code"] == "ForbiddenByRbac"
