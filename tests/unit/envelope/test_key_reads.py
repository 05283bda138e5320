"""The per-process cache of versioned key reads (issue 21): a version's public key and creation time are read once
per process, the current-version read fills the cache, and every other read still reaches the vault."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.envelope import CachedKeyReads, version_of
from shared.errors import NotFound
from shared.model import KeyRef
from tests.fakes.keyvault import FakeKeyVault

REF = KeyRef("https://kv-reads.vault.azure.net", "kek")


class Counting:
    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, Counter()

    def __getattr__(self, name):
        attr = getattr(self.inner, name)

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


@pytest.fixture
def vault():
    inner = FakeKeyVault()
    inner.create_key(REF, kty="RSA-HSM", size=2048, ops=("wrapKey", "unwrapKey"))
    return Counting(inner)


def test_a_version_is_read_once_and_the_current_read_fills_the_cache(vault):
    reads = CachedKeyReads(vault)
    current = reads.get_key(REF)
    assert reads.version_of(REF, current.version) == current
    assert reads.version_of(REF, current.version.upper()) == current  # one form for every spelling of the id
    assert vault.calls["get_key"] == 1
    new = vault.inner.rotate_key(REF)
    for _ in range(5):
        assert reads.version_of(REF, new.version).key_id == new.key_id
    assert vault.calls["get_key"] == 2 and reads.cached() == 2


def test_get_key_still_reaches_the_vault_so_a_disabled_version_is_seen(vault):
    reads = CachedKeyReads(vault)
    current = reads.get_key(REF)
    vault.inner.update_version(REF, current.version, enabled=False)
    assert not reads.get_key(REF, current.version).enabled  # mutable attributes are never served from the cache
    assert vault.calls["get_key"] == 2


def test_other_operations_pass_through_and_a_missing_version_is_not_cached(vault):
    reads = CachedKeyReads(vault)
    current = reads.get_key(REF)
    wrapped = reads.wrap_key(REF, current.version, b"\x01" * 32)
    assert reads.unwrap_key(wrapped.key_id, wrapped.wrapped) == b"\x01" * 32
    for _ in range(2):
        with pytest.raises(NotFound):
            reads.version_of(REF, "0" * 32)
    assert reads.cached() == 1


def test_version_of_without_a_cache_is_a_plain_read(vault):
    current = vault.inner.get_key(REF)
    assert version_of(vault, REF, current.version) == current
    assert version_of(vault, REF, current.version) == current
    assert vault.calls["get_key"] == 2
