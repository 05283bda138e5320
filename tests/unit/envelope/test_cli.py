"""The envelope CLI over the fakes (ports injected): seeding fills the key's shards and says so in JSON, the progress
bar goes to stderr only, and encrypt/decrypt/open round-trip without a DEK byte on any stream."""

from __future__ import annotations

import io
import json

import pytest

from shared.envelope import cli as envelope_cli
from shared.envelope.sharding import all_shards
from shared.errors import InvalidInput
from shared.inventory import load_inventory
from tests.fakes.dekstore import FakeDekStore
from tests.fakes.keyvault import FakeKeyVault
from tests.unit.conftest import ROOT

KEY_NAME = "mysql-encryption-key"


@pytest.fixture
def ports() -> envelope_cli.Ports:
    inventory = load_inventory(ROOT / "inventory" / "reference.yaml", {})
    vault = FakeKeyVault()
    key = inventory.key(KEY_NAME)
    vault.create_key(key.ref, kty=key.kty, size=key.size, ops=key.ops)
    return envelope_cli.Ports(inventory, vault, FakeDekStore(), "cmkdeks")


def _run(ports, *argv: str, stdin: bytes = b""):
    out, err = io.StringIO(), io.StringIO()
    code = envelope_cli.run(envelope_cli.parse(argv), ports, stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_seed_creates_the_deks_in_the_consumers_shards_and_prints_a_summary(ports):
    code, out, err = _run(ports, "seed", "--key", KEY_NAME, "--count", "200", "--workers", "4")
    summary = json.loads(out)
    current = ports.vault.get_key(ports.inventory.key(KEY_NAME).ref)
    assert code == 0
    assert (summary["requested"], summary["created"], summary["failed"]) == (200, 200, 0)
    assert summary["key_id"] == current.key_id
    assert set(summary["partitions"]) <= set(all_shards("mysql-")) and sum(summary["partitions"].values()) == 200
    assert ports.dekstore.count_by_key_id(current.ref) == {current.key_id: 200}
    assert ports.vault.unwrap_calls == 0  # seeding wraps locally
    assert "200/200 100%" in err and "\r" in err and err.endswith("\n")
    assert "seed [" not in out


def test_encrypt_decrypt_and_open_round_trip_over_the_seeded_registry(ports):
    _run(ports, "seed", "--key", KEY_NAME, "--count", "1")
    partition = ports.dekstore.partitions()[0]
    dek = ports.dekstore.list_page(partition).items[0]
    where = ("--partition", partition, "--dek-id", dek.dek_id)
    _, blob, _ = _run(ports, "encrypt", *where, "--aad", "row 1", stdin=b"hello mysql")
    code, plain, _ = _run(ports, "decrypt", *where, "--aad", "row 1", stdin=blob.encode())
    assert (code, plain) == (0, "hello mysql")
    code, shown, _ = _run(ports, "open", *where)
    assert json.loads(shown) == {"partition": partition, "dek_id": dek.dek_id, "key_id": dek.key_id, "kcv": "ok"}


def test_seed_refuses_a_key_without_a_dek_table_or_a_table_other_than_its_consumers(ports):
    with pytest.raises(InvalidInput) as other_table:
        _run(
            envelope_cli.Ports(ports.inventory, ports.vault, ports.dekstore, "elsewhere"),
            "seed",
            "--key",
            KEY_NAME,
            "--count",
            "1",
        )
    assert other_table.value.field == "CMK_DEK_TABLE"
    with pytest.raises(InvalidInput) as count:
        _run(ports, "seed", "--key", KEY_NAME, "--count", "0")
    assert count.value.field == "count"
    assert ports.dekstore.partitions() == []


def test_a_shard_keys_key_seeds_under_shard_keys_migrates_back_and_rotates_its_shard_keys(ports):
    import dataclasses

    from shared.envelope import SHARD_WRAP_ALGORITHM, ShardKeyCache
    from tests.fakes.shardkeys import FakeShardKeyStore

    key = ports.inventory.key(KEY_NAME)
    table = next(c for c in key.consumers if c.kind.value == "dek-table")
    sharded = dataclasses.replace(
        key,
        consumers=tuple(
            dataclasses.replace(c, options={**c.options, "hierarchy": "shard-keys"}) if c is table else c
            for c in key.consumers
        ),
    )
    inventory = dataclasses.replace(
        ports.inventory, keys=tuple(sharded if k is key else k for k in ports.inventory.keys)
    )
    ports = dataclasses.replace(ports, inventory=inventory, shardkeys=FakeShardKeyStore(), cache=ShardKeyCache(60))
    code, out, _ = _run(ports, "seed", "--key", KEY_NAME, "--count", "50")
    assert code == 0 and json.loads(out)["created"] == 50
    assert ports.vault.unwrap_calls == 0 and ports.dekstore.count_by_key_id(key.ref) == {}
    partition = ports.dekstore.partitions()[0]
    dek = ports.dekstore.list_page(partition).items[0]
    assert dek.algorithm == SHARD_WRAP_ALGORITHM
    where = ("--partition", partition, "--dek-id", dek.dek_id)
    _, blob, _ = _run(ports, "encrypt", *where, stdin=b"hello shard")
    code, out, _ = _run(ports, "rotate-shard-key", "--key", KEY_NAME)
    changes = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and changes and all(c["finished"] and c["generation"] == 2 for c in changes)
    assert sum(c["moved"] for c in changes) == 50
    code, out, _ = _run(ports, "migrate", "--key", KEY_NAME, "--to", "flat")
    assert code == 0 and sum(json.loads(line)["moved"] for line in out.splitlines()) == 50
    assert sum(ports.dekstore.count_by_key_id(key.ref).values()) == 50
    assert _run(ports, "decrypt", *where, stdin=blob.encode())[1] == "hello shard"
    with pytest.raises(InvalidInput):
        _run(ports, "migrate", "--key", KEY_NAME, "--to", "flat", "--shard", "aks-000")
