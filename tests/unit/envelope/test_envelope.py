"""Envelope encryption over the fakes (real RSA in the fake vault, real AES-GCM): a DEK round trip, what tampering
does, and that no plaintext ever shows in a repr, a str or an exception."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from shared.envelope import deks as envelope
from shared.envelope.deks import DecryptFailed, KcvMismatch, create_dek, decrypt, encrypt, open_dek, rewrapped
from shared.envelope.sharding import all_shards, shard_of
from shared.errors import InvalidInput, KeyDisabled, UnwrapFailed
from shared.inventory import load_inventory
from shared.inventory.model import Consumer
from shared.model import ConsumerKind, KeyRef
from tests.fakes.dekstore import FakeDekStore
from tests.fakes.keyvault import FakeKeyVault
from tests.unit.conftest import ROOT

KEY = KeyRef("https://kv-cmk-reference.vault.azure.net", "mysql-encryption-key")
SECRET_DATA = b"card 4111-1111-1111-1111"


@pytest.fixture
def vault() -> FakeKeyVault:
    kv = FakeKeyVault()
    kv.create_key(KEY, kty="RSA-HSM", size=2048, ops=("wrapKey", "unwrapKey"))
    return kv


@pytest.fixture
def store() -> FakeDekStore:
    return FakeDekStore()


def _secret(handle) -> bytes:
    return bytes(handle._secret)


def test_a_dek_round_trips_through_the_registry_and_decrypts_what_it_encrypted(vault, store):
    created = create_dek(KEY, vault=vault, store=store, prefix="mysql-")
    blob = encrypt(created, SECRET_DATA, b"row 7")
    assert vault.unwrap_calls == 0  # creating a DEK wraps locally: no remote crypto call
    opened = open_dek(created.partition, created.dek_id, vault=vault, store=store)
    assert vault.unwrap_calls == 1
    assert _secret(opened) == _secret(created) and len(_secret(opened)) == 32
    assert decrypt(opened, blob, b"row 7") == SECRET_DATA
    record = store.get(created.partition, created.dek_id)
    assert record.key_id == KEY.version_id(vault.get_key(KEY).version)  # the current version, versioned
    assert record.kcv == envelope.key_check_value(_secret(created)) and len(record.kcv) == 16
    assert created.partition == shard_of(created.dek_id, "mysql-") and created.partition in all_shards("mysql-")


def test_a_new_dek_goes_under_the_current_version_and_old_ones_stay_openable(vault, store):
    old = create_dek(KEY, vault=vault, store=store)
    new_version = vault.rotate_key(KEY).version
    new = create_dek(KEY, vault=vault, store=store)
    assert new.record.key_version == new_version != old.record.key_version
    assert _secret(open_dek(old.partition, old.dek_id, vault=vault, store=store)) == _secret(old)


def test_a_managed_keys_dek_table_consumer_gives_the_prefix_and_shard_count(vault, store):
    consumer = Consumer(ConsumerKind.DEK_TABLE, None, {"table": "cmkdeks", "partition_prefix": "mysql-", "shards": 4})
    key = dataclasses.replace(_reference_key(KEY.name), consumers=(consumer,))
    assert key.ref == KEY
    partitions = {create_dek(key, vault=vault, store=store).partition for _ in range(40)}
    assert partitions <= set(all_shards("mysql-", 4)) and len(partitions) > 1


def test_a_flipped_byte_in_the_wrapped_value_fails_the_open_and_returns_nothing(vault, store):
    created = create_dek(KEY, vault=vault, store=store, partition="p0", dek_id="d1")
    good = store.get("p0", "d1")
    flipped = bytearray(good.wrapped)
    flipped[17] ^= 0x01
    store.replace(dataclasses.replace(good, wrapped=bytes(flipped)))
    with pytest.raises(UnwrapFailed) as exc:
        open_dek("p0", "d1", vault=vault, store=store)
    assert _secret(created).hex() not in str(exc.value)


def test_a_wrong_kcv_is_a_kcv_error_that_names_the_dek_but_not_its_bytes(vault, store):
    created = create_dek(KEY, vault=vault, store=store, partition="p0", dek_id="d1")
    good = store.get("p0", "d1")
    store.replace(dataclasses.replace(good, kcv="00" * 8))
    with pytest.raises(KcvMismatch) as exc:
        open_dek("p0", "d1", vault=vault, store=store)
    text = str(exc.value) + repr(exc.value)
    assert "p0/d1" in text
    for shown in (_secret(created).hex(), envelope.key_check_value(_secret(created)), repr(_secret(created))):
        assert shown not in text


def test_a_flipped_byte_anywhere_in_the_ciphertext_fails_decryption(vault, store):
    dek = create_dek(KEY, vault=vault, store=store)
    blob = encrypt(dek, SECRET_DATA, b"ctx")
    assert blob[0] == 1 and len(blob) == 1 + 12 + len(SECRET_DATA) + 16
    for position in (1, 13, len(blob) - 1):  # nonce, body, tag
        bad = bytearray(blob)
        bad[position] ^= 0x80
        with pytest.raises(DecryptFailed) as exc:
            decrypt(dek, bytes(bad), b"ctx")
        assert SECRET_DATA.decode() not in str(exc.value)
    with pytest.raises(DecryptFailed):
        decrypt(dek, blob, b"other ctx")
    with pytest.raises(DecryptFailed):
        decrypt(dek, b"\x02" + blob[1:], b"ctx")  # an unknown format version
    with pytest.raises(DecryptFailed):
        decrypt(dek, blob[:20], b"ctx")


def test_the_dek_id_is_bound_so_a_ciphertext_does_not_open_under_a_copy_with_another_id(vault, store):
    dek = create_dek(KEY, vault=vault, store=store, dek_id="a")
    blob = encrypt(dek, SECRET_DATA)
    twin = envelope.DekHandle(dataclasses.replace(dek.record, dek_id="b"), _secret(dek))
    with pytest.raises(DecryptFailed):
        decrypt(twin, blob)
    assert decrypt(envelope.DekHandle(dek.record, _secret(dek)), blob) == SECRET_DATA


def test_no_plaintext_in_repr_str_or_pickle(vault, store):
    dek = create_dek(KEY, vault=vault, store=store, dek_id="d1")
    secret = _secret(dek)
    for text in (repr(dek), str(dek), f"{dek}", repr([dek])):
        assert "d1" in text
        for shown in (secret.hex(), repr(secret), secret.decode("latin-1")):
            assert shown not in text
    with pytest.raises(TypeError):
        pickle.dumps(dek)


def test_a_closed_handle_forgets_its_key_and_refuses_to_work(vault, store):
    with create_dek(KEY, vault=vault, store=store) as dek:
        blob = encrypt(dek, SECRET_DATA)
    assert dek.closed and _secret(dek) == bytes(32)
    with pytest.raises(InvalidInput) as exc:
        decrypt(dek, blob)
    assert exc.value.field == "dek"


def test_a_disabled_current_version_makes_no_dek(vault, store):
    current = vault.get_key(KEY)
    vault.update_version(KEY, current.version, enabled=False)
    with pytest.raises(KeyDisabled):
        create_dek(KEY, vault=vault, store=store)
    assert store.partitions() == []


def test_rewrapped_moves_a_dek_to_a_new_version_and_keeps_the_old_copy(vault, store):
    created = create_dek(KEY, vault=vault, store=store, partition="p0", dek_id="d1")
    new_version = vault.rotate_key(KEY).version
    opened = open_dek("p0", "d1", vault=vault, store=store)
    moved = store.replace(rewrapped(opened, vault=vault, key=KEY, version=new_version))
    assert moved.key_version == new_version
    assert (moved.previous_key_id, moved.previous_wrapped) == (created.record.key_id, created.record.wrapped)
    assert _secret(open_dek("p0", "d1", vault=vault, store=store)) == _secret(created)


def _reference_key(name: str):
    inventory = load_inventory(ROOT / "inventory" / "reference.yaml", {})
    return inventory.key(name)
