"""Importing key material (PUT /keys/{name}) through the unchanged KeyClient.import_key: what Key Vault takes, what
it refuses, and that the vault then uses exactly the material imported."""

from __future__ import annotations

import hashlib

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import JsonWebKey, KeyClient, KeyType
from azure.keyvault.keys.crypto import KeyWrapAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from localrun.onprem_hsm import import_into, jwk_of, onprem_key, public_sha256
from tests.emulators.conftest import OPERATOR
from tests.support.emulators import Emulators

pytestmark = pytest.mark.emulator


def _message(exc: HttpResponseError) -> str:
    return exc.response.json()["error"]["message"]


def test_an_imported_key_is_the_material_brought_in_and_each_import_is_a_new_version(
    emu: Emulators, admin_client: KeyClient
) -> None:
    first_key, second_key = onprem_key(), onprem_key()
    first = import_into(admin_client, "imported-a", first_key)
    second = import_into(admin_client, "imported-a", second_key)
    assert first.key_type == KeyType.rsa_hsm and second.key_type == KeyType.rsa_hsm
    assert first.properties.version != second.properties.version
    assert admin_client.get_key("imported-a").properties.version == second.properties.version
    public = first_key.public_key().public_numbers()
    assert int.from_bytes(first.key.n, "big") == public.n and first.key_operations == ["wrapKey", "unwrapKey"]
    assert not getattr(first.key, "d", None)  # the private key never comes back
    assert first.properties.tags == {"cmk-import-sha256": public_sha256(first_key)}
    # Wrapped here under the on-premises public key, unwrapped by the vault: it holds that very private key.
    dek = hashlib.sha256(b"a dek").digest()
    wrapped = first_key.public_key().encrypt(
        dek, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    )
    crypto = emu.crypto_client(first, OPERATOR)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == dek


def test_a_software_import_stays_rsa(admin_client: KeyClient) -> None:
    key = import_into(admin_client, "imported-soft", onprem_key(), hardware_protected=False)
    assert key.key_type == KeyType.rsa


def _numbers(private) -> dict[str, bytes]:
    jwk = jwk_of(private)
    return {name: getattr(jwk, name) for name in ("n", "e", "d", "p", "q", "dp", "dq", "qi")}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda k: {**k, "d": None, "p": None, "q": None, "dp": None, "dq": None, "qi": None}, "key.d"),
        (lambda k: {**k, "p": k["q"]}, "key"),  # p and q do not make n
        (lambda k: {**k, "kty": "RSA-HSM"}, "key.key_hsm"),  # BYOK without its transfer blob
        (lambda k: {**k, "kty": "EC"}, "key.kty"),
    ],
)
def test_bad_jwks_are_refused_naming_the_field_and_nothing_is_created(
    admin_client: KeyClient, change, field: str
) -> None:
    parts = change({"kty": "RSA", **_numbers(onprem_key())})
    with pytest.raises(HttpResponseError) as err:
        admin_client.import_key("refused", JsonWebKey(key_ops=["wrapKey", "unwrapKey"], **parts))
    assert err.value.status_code == 400 and _message(err.value).startswith(field + ":")
    assert not [k for k in admin_client.list_properties_of_keys() if k.name == "refused"]


def test_a_key_size_the_vault_does_not_hold_is_refused(admin_client: KeyClient) -> None:
    with pytest.raises(HttpResponseError) as err:
        import_into(admin_client, "too-small", onprem_key(1024))
    assert err.value.status_code == 400 and _message(err.value).startswith("key.n:")
