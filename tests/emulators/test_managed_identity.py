"""The App Service managed-identity endpoint: the unchanged DefaultAzureCredential gets a token from it, and Key
Vault accepts that token as the registered app's principal (and only as that principal)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.keys import KeyClient

from localrun.system import OTHER_CREDENTIAL_VARIABLES
from tests.emulators.conftest import CRYPTO_OFFICER, Grant
from tests.support.emulators import Emulators

pytestmark = pytest.mark.emulator


@pytest.fixture
def app_identity(emu: Emulators, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An app registered with the endpoint, and this process's environment set as App Service sets it."""
    registered = emu.register_identity(str(uuid.uuid4()))
    for name in OTHER_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", registered["identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", registered["identity_header"])
    return registered


def key_client(emu: Emulators, credential) -> KeyClient:
    return KeyClient(emu.vault_url(), credential, verify_challenge_resource=False, connection_verify=emu.ca_cert)


def token_request(endpoint: str, header: str | None, **params: str) -> tuple[int, dict]:
    query = urllib.parse.urlencode({"api-version": "2019-08-01", **params})
    request = urllib.request.Request(f"{endpoint}?{query}", headers={"X-IDENTITY-HEADER": header} if header else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_default_azure_credential_authenticates_to_key_vault_as_the_app(
    emu: Emulators, app_identity: dict[str, str], grant: Grant
) -> None:
    credential = DefaultAzureCredential()
    with key_client(emu, credential) as client:
        with pytest.raises(HttpResponseError) as caught:  # authenticated, but the app holds no role yet
            client.create_rsa_key("cmk-mi")
        assert caught.value.status_code == 403
        assert f"oid={app_identity['principal_id']}" in caught.value.message

        grant(app_identity["principal_id"], CRYPTO_OFFICER, emu.vault_resource_id())
        created = client.create_rsa_key("cmk-mi")
        assert client.get_key("cmk-mi").id == created.id


def test_token_names_the_app_principal_and_tenant_for_the_resource(emu: Emulators, app_identity) -> None:
    status, body = token_request(
        app_identity["identity_endpoint"], app_identity["identity_header"], resource="https://vault.azure.net"
    )
    assert status == 200
    assert (body["resource"], body["token_type"], body["client_id"]) == (
        "https://vault.azure.net",
        "Bearer",
        app_identity["client_id"],
    )
    assert isinstance(body["expires_on"], str) and int(body["expires_on"]) > 0
    payload = body["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert (claims["oid"], claims["tid"], claims["aud"]) == (
        app_identity["principal_id"],
        emu.tenant_id,
        "https://vault.azure.net",
    )


def test_a_wrong_or_missing_identity_header_is_refused(emu: Emulators, app_identity, monkeypatch) -> None:
    endpoint = app_identity["identity_endpoint"]
    assert token_request(endpoint, "not-the-secret", resource="https://vault.azure.net")[0] == 401
    assert token_request(endpoint, None, resource="https://vault.azure.net")[0] == 401
    status, body = token_request(endpoint, app_identity["identity_header"])
    assert status == 400 and "resource" in body["message"]

    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token("https://vault.azure.net/.default")


def test_user_assigned_identity_is_chosen_by_client_id(emu: Emulators, monkeypatch, grant: Grant) -> None:
    uami = {"principal_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4())}
    registered = emu.register_identity(str(uuid.uuid4()), user_assigned=[uami])
    monkeypatch.setenv("IDENTITY_ENDPOINT", registered["identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", registered["identity_header"])
    for name in OTHER_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    grant(uami["principal_id"], CRYPTO_OFFICER, emu.vault_resource_id())

    with key_client(emu, ManagedIdentityCredential(client_id=uami["client_id"])) as client:
        assert client.create_rsa_key("cmk-uami").name == "cmk-uami"
    status, _ = token_request(
        registered["identity_endpoint"],
        registered["identity_header"],
        resource="https://vault.azure.net",
        client_id=str(uuid.uuid4()),
    )
    assert status == 400


def test_registration_survives_a_restart_with_state_dir(tmp_path) -> None:
    from tests.support.emulators import start_emulators

    state = tmp_path / "state"
    first = start_emulators(tmp_path / "a", state_dir=state)
    try:
        registered = first.register_identity(str(uuid.uuid4()))
    finally:
        first.stop()
    second = start_emulators(tmp_path / "b", state_dir=state)
    try:
        again = second.register_identity(registered["principal_id"])
        assert again["identity_header"] == registered["identity_header"]
        assert token_request(second.identity_endpoint, registered["identity_header"], resource="https://x")[0] == 200
    finally:
        second.stop()
