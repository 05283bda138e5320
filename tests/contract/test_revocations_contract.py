"""The revocation ledger, fake and Table Storage (Azurite) through the same assertions: what an operator revoked
on purpose stays revoked, per key, until a restoration closes it; one active revocation per subject."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import InvalidInput, NotFound, PreconditionFailed
from shared.revocation import Revocation, RevocationAction, RevocationState
from tests.contract.conftest import STORAGE_MODES, identity_table
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


@pytest.fixture(params=STORAGE_MODES)
def ledger(request):
    if request.param == "fake":
        return FakeRevocations()
    from shared.azure.revocations import TableRevocations
    from shared.azure.tables import LazyTable, table_client

    if request.param == "azurite-identity":
        return TableRevocations(identity_table(request.getfixturevalue("azurite_oauth"), f"rev{uuid.uuid4().hex[:12]}"))
    connection = request.getfixturevalue("azurite").connection_string
    return TableRevocations(LazyTable(table_client(f"rev{uuid.uuid4().hex[:12]}", connection_string=connection)))


def _revocation(key="mysql-encryption-key", principal=None, action=RevocationAction.REVOKE_ACCESS) -> Revocation:
    return Revocation(
        revocation_id=uuid.uuid4().hex,
        key=key,
        action=action,
        principal_id=None if action is RevocationAction.DISABLE_KEY else (principal or str(uuid.uuid4())).lower(),
        service="mysql",
        reason="crypto-shred drill",
        requested_by="alice@example.org",
        requested_at=NOW,
        state=RevocationState.PLANNED,
        plan={"summary": "remove 1 assignment", "remove": [{"assignment_id": "/x", "role": "r"}]},
        updated_at=NOW,
    )


def test_an_opened_revocation_is_active_for_its_key_only_and_reads_back_whole(ledger):
    principal = str(uuid.uuid4()).upper()
    assert ledger.revoked("mysql-encryption-key") == set() and ledger.active() == []
    opened, fresh = ledger.open(_revocation(principal=principal))
    assert fresh and opened.etag
    assert ledger.revoked("MySQL-Encryption-Key") == {principal.lower()}
    assert ledger.revoked("aks-encryption-key") == set()
    assert ledger.shredded("mysql-encryption-key") is None
    read = ledger.get(opened.revocation_id)
    assert read == opened and read.plan == opened.plan and read.to_json() == opened.to_json()
    assert [r.revocation_id for r in ledger.active()] == [opened.revocation_id]


def test_a_second_revocation_of_the_same_subject_returns_the_first_and_records_nothing(ledger):
    first, _ = ledger.open(_revocation(principal="8E2C7D5A-1B4F-4A9E-8C3D-6F5B0A9E7D42"))
    second = _revocation(principal="8e2c7d5a-1b4f-4a9e-8c3d-6f5b0a9e7d42")
    existing, fresh = ledger.open(second)
    assert not fresh and existing.revocation_id == first.revocation_id
    with pytest.raises(NotFound):
        ledger.get(second.revocation_id)
    assert len(ledger.active()) == 1


def test_opening_again_after_a_lost_reply_is_still_ours(ledger):
    revocation = _revocation()
    ledger.open(revocation)
    again, fresh = ledger.open(revocation)
    assert fresh and again.revocation_id == revocation.revocation_id
    assert ledger.get(revocation.revocation_id).revocation_id == revocation.revocation_id


def test_disable_key_marks_the_key_shredded(ledger):
    opened, _ = ledger.open(_revocation(key="aks-encryption-key", action=RevocationAction.DISABLE_KEY))
    assert ledger.shredded("AKS-encryption-key") == opened.revocation_id
    assert ledger.shredded("mysql-encryption-key") is None
    assert ledger.revoked("aks-encryption-key") == set()


def test_updates_are_etag_guarded(ledger):
    opened, _ = ledger.open(_revocation())
    later = NOW + timedelta(minutes=1)
    executed = ledger.update(opened.moved(RevocationState.EXECUTED, later, executed=("/assignment/1",)))
    assert executed.etag != opened.etag
    assert ledger.get(opened.revocation_id).state is RevocationState.EXECUTED
    assert ledger.get(opened.revocation_id).executed == ("/assignment/1",)
    with pytest.raises(PreconditionFailed):
        ledger.update(opened.moved(RevocationState.FAILED, later, failure="stale writer"))
    assert ledger.get(opened.revocation_id).state is RevocationState.EXECUTED


def test_close_ends_only_its_own_subject_and_a_new_revocation_may_follow(ledger):
    opened, _ = ledger.open(_revocation(principal="3b9a4c1e-5f2d-4e8a-b7c6-1d0e9f8a2b31"))
    other, _ = ledger.open(_revocation(key="aks-encryption-key", principal="3b9a4c1e-5f2d-4e8a-b7c6-1d0e9f8a2b31"))
    ledger.close(opened)
    ledger.close(opened)  # twice is harmless
    assert ledger.revoked("mysql-encryption-key") == set()
    assert ledger.revoked("aks-encryption-key") == {"3b9a4c1e-5f2d-4e8a-b7c6-1d0e9f8a2b31"}
    assert ledger.get(opened.revocation_id).revocation_id == opened.revocation_id  # the record stays
    again, fresh = ledger.open(_revocation(principal="3b9a4c1e-5f2d-4e8a-b7c6-1d0e9f8a2b31"))
    assert fresh and again.revocation_id != opened.revocation_id
    ledger.close(opened)  # the old one no longer closes the new one
    assert ledger.revoked("mysql-encryption-key") == {"3b9a4c1e-5f2d-4e8a-b7c6-1d0e9f8a2b31"}
    assert {r.revocation_id for r in ledger.active()} == {again.revocation_id, other.revocation_id}


def test_an_unknown_or_malformed_id_is_refused(ledger):
    with pytest.raises(NotFound):
        ledger.get(uuid.uuid4().hex)


def test_reads_never_create_the_table(azurite):
    """A GET that consults the ledger must change nothing, not even bring its table into being."""
    from azure.data.tables import TableServiceClient

    from shared.azure.revocations import TableRevocations
    from shared.azure.tables import LazyTable, table_client

    name = f"rev{uuid.uuid4().hex[:12]}"
    ledger = TableRevocations(LazyTable(table_client(name, connection_string=azurite.connection_string)))
    assert ledger.revoked("mysql-encryption-key") == set() and ledger.active() == []
    assert ledger.shredded("aks-encryption-key") is None
    with pytest.raises(NotFound):
        ledger.get(uuid.uuid4().hex)
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    assert name not in {t.name for t in service.list_tables()}


def _large_plan(entries: int) -> dict:
    """A plan as a revocation at enterprise scale writes it: hundreds of group grants of key use, each named."""
    scope = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault"
    grants = [
        {
            "assignment_id": f"{scope}/vaults/kv/keys/k/providers/Microsoft.Authorization/roleAssignments/"
            f"{uuid.uuid4()}",
            "scope": f"{scope}/vaults/kv/keys/k",
            "role_definition_id": f"/providers/Microsoft.Authorization/roleDefinitions/{uuid.uuid4()}",
            "principal_id": str(uuid.uuid4()),
            "principal_type": "Group",
            "role": "Key Vault Crypto User",
        }
        for _ in range(entries)
    ]
    return {"summary": f"remove {entries} assignment(s)", "remove": grants, "groups": grants[: entries // 2]}


@pytest.mark.parametrize("entries", [400, 1_500])  # about 430 KB (one entity) and 1.6 MB (past one entity)
def test_a_large_plan_is_stored_whole_and_reads_back_whole_after_updates(ledger, entries):
    plan = _large_plan(entries)
    opened, fresh = ledger.open(dataclasses.replace(_revocation(), plan=plan))
    assert fresh and ledger.get(opened.revocation_id).plan == plan
    executed_ids = tuple(a["assignment_id"] for a in plan["remove"])
    executed = ledger.update(opened.moved(RevocationState.EXECUTED, NOW, executed=executed_ids))
    read = ledger.get(opened.revocation_id)
    assert read.plan == plan and read.executed == executed_ids and read.etag == executed.etag
    smaller = ledger.update(executed.moved(RevocationState.EXECUTED, NOW, plan={"summary": "s", "remove": []}))
    assert ledger.get(opened.revocation_id).plan == {"summary": "s", "remove": []}
    with pytest.raises(PreconditionFailed):
        ledger.update(executed.moved(RevocationState.FAILED, NOW, failure="stale"))
    assert ledger.get(smaller.revocation_id).plan == {"summary": "s", "remove": []}


def test_a_record_above_the_ledgers_limit_is_refused_naming_the_plan(ledger):
    from shared.revocation import MAX_RECORD_CHARS

    entries = MAX_RECORD_CHARS // 400 + 10
    with pytest.raises(InvalidInput) as refused:
        ledger.open(dataclasses.replace(_revocation(), plan=_large_plan(entries)))
    assert refused.value.field == "plan"
    assert ledger.active() == []


def test_every_row_the_table_ledger_writes_fits_table_storages_limits(azurite):
    """Property <= 64 KiB and entity <= 1 MiB (UTF-16 strings), whether or not Azurite enforces them."""
    from shared.azure.revocations import TableRevocations
    from shared.azure.tables import LazyTable, table_client

    client = table_client(f"rev{uuid.uuid4().hex[:12]}", connection_string=azurite.connection_string)
    ledger = TableRevocations(LazyTable(client))
    plan = _large_plan(1_500)
    opened, _ = ledger.open(dataclasses.replace(_revocation(), plan=plan))
    rows = list(client.query_entities("PartitionKey eq 'revocation'"))
    assert len(rows) > 1  # past one entity: overflow rows
    for row in rows:
        sizes = [len(v.encode("utf-16-le")) for v in row.values() if isinstance(v, str)]
        assert max(sizes) <= 64 * 1024 and sum(sizes) + 2048 <= 1024 * 1024
    assert ledger.get(opened.revocation_id).plan == plan
