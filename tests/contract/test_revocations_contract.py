"""The revocation ledger, fake and Table Storage (Azurite) through the same assertions: what an operator revoked
on purpose stays revoked, per key, until a restoration clears it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.fakes.revocations import FakeRevocations
from tests.support.azurite import start_azurite

NOW = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-revocations"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=["fake", "azurite"])
def ledger(request):
    if request.param == "fake":
        return FakeRevocations()
    from shared.azure.revocations import TableRevocations
    from shared.azure.tables import LazyTable, table_client

    connection = request.getfixturevalue("azurite").connection_string
    return TableRevocations(LazyTable(table_client(f"rev{uuid.uuid4().hex[:12]}", connection_string=connection)))


def test_a_revocation_is_per_key_case_insensitive_and_cleared_by_a_restoration(ledger):
    principal = str(uuid.uuid4()).upper()
    assert ledger.revoked("mysql-encryption-key") == set()
    ledger.record("mysql-encryption-key", principal, reason="crypto-shred drill", at=NOW)
    ledger.record("MySQL-Encryption-Key", principal, reason="again: idempotent", at=NOW)
    assert ledger.revoked("mysql-encryption-key") == {principal.lower()}
    assert ledger.revoked("aks-encryption-key") == set()
    ledger.clear("mysql-encryption-key", principal)
    ledger.clear("mysql-encryption-key", principal)  # clearing twice is harmless
    assert ledger.revoked("mysql-encryption-key") == set()
