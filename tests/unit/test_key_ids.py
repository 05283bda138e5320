"""M6: a key version is (vault, key name, version), however its URL is spelled; ids compare in one normalised form."""

from __future__ import annotations

import pytest

from shared.model import KeyRef, normalize_host, normalize_key_id, same_key_id

CANONICAL = "https://kv.vault.azure.net/keys/mysql-key/0a1b2c"


@pytest.mark.parametrize(
    "spelled",
    [
        CANONICAL,
        "https://kv.vault.azure.net:443/keys/mysql-key/0a1b2c",
        "HTTPS://KV.Vault.Azure.Net/keys/mysql-key/0a1b2c/",
        "https://kv.privatelink.vaultcore.azure.net/keys/mysql-key/0a1b2c",
        "https://kv.privatelink.vaultcore.azure.net:443/keys/MYSQL-KEY/0A1B2C",
    ],
)
def test_every_spelling_of_one_key_version_normalises_to_one_id(spelled):
    assert normalize_key_id(spelled) == CANONICAL
    assert same_key_id(spelled, CANONICAL)


def test_different_vaults_ports_keys_and_versions_stay_different():
    assert not same_key_id(CANONICAL, "https://kv2.vault.azure.net/keys/mysql-key/0a1b2c")
    assert not same_key_id(CANONICAL, "https://kv.vault.azure.net:8443/keys/mysql-key/0a1b2c")
    assert not same_key_id(CANONICAL, "https://kv.vault.azure.net/keys/mysql-key/0a1b2d")
    assert not same_key_id(CANONICAL, "https://kv.vault.azure.net/keys/other/0a1b2c")
    assert not same_key_id(None, CANONICAL) and not same_key_id(None, None)


def test_hosts_and_refs_normalise_the_same_way():
    assert normalize_host("kv.privatelink.vaultcore.azure.cn:443") == "kv.vault.azure.cn"
    assert normalize_host("https://127.0.0.1:8443/") == "127.0.0.1:8443"
    ref = KeyRef("https://KV.privatelink.vaultcore.azure.net:443/", "Mysql-Key")
    assert ref.vault_host == "kv.vault.azure.net"
    assert ref.normalized_id == "https://kv.vault.azure.net/keys/mysql-key"
