"""Alert log semantics every backend must keep: fields round-trip, newest first, `add` keeps the first entry of an id
while `put` replaces it, the state filter, limits and ids refused by name. Runs the fake and the Table adapter on
Azurite, by connection string and by identity."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.alertlog import AlertEntry, AlertState, alert_id_at, new_alert_id
from shared.errors import InvalidInput
from tests.contract.conftest import STORAGE_MODES, identity_table
from tests.fakes.alertlog import FakeAlertLog
from tests.support.azurite import start_azurite

T0 = datetime(2026, 12, 1, 22, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-alertlog"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=STORAGE_MODES)
def alert_log(request):
    if request.param == "fake":
        return FakeAlertLog()
    from shared.azure.alertlog import TableAlertLog
    from shared.azure.tables import LazyTable, table_client

    name = f"alerts{uuid.uuid4().hex[:12]}"
    if request.param == "azurite-identity":
        return TableAlertLog(identity_table(request.getfixturevalue("azurite_oauth"), name))
    connection = request.getfixturevalue("azurite").connection_string
    return TableAlertLog(LazyTable(table_client(name, connection_string=connection)))


def _entry(minute: int, state: AlertState = AlertState.PENDING, **kw) -> AlertEntry:
    at = T0 + timedelta(minutes=minute)
    fields = {
        "alert_id": new_alert_id(at),
        "type": "CmkGuardian.Key.Rotated",
        "subject": "keys/mysql-encryption-key",
        "severity": "info",
        "message": "mysql-encryption-key rotated",
        "state": state,
        "updated_at": at,
    }
    return AlertEntry(**{**fields, **kw})


def test_every_field_round_trips_and_the_id_tells_when_it_was_queued(alert_log):
    entry = _entry(
        3, AlertState.FAILED, key="mysql-encryption-key", attempts=2, error="ServiceUnavailable", audit_record_id="a1"
    )
    alert_log.add(entry)
    assert alert_log.get(entry.alert_id) == entry
    assert alert_id_at(entry.alert_id) == T0 + timedelta(minutes=3) == entry.queued_at
    assert entry.to_json()["queued_at"] == "2026-12-01T22:03:00Z"


def test_newest_first_whatever_the_order_of_writes(alert_log):
    entries = [_entry(m) for m in (2, 0, 5, 1)]
    for e in entries:
        alert_log.add(e)
    assert [e.queued_at.minute for e in alert_log.recent()] == [5, 2, 1, 0]
    assert [e.queued_at.minute for e in alert_log.recent(limit=2)] == [5, 2]


def test_add_keeps_the_first_entry_and_put_replaces_it(alert_log):
    entry = _entry(0)
    alert_log.add(entry)
    assert alert_log.add(replace(entry, message="a retried queueing")) == entry
    assert alert_log.get(entry.alert_id).message == entry.message
    sent = replace(entry, state=AlertState.SENT, attempts=1, updated_at=T0 + timedelta(minutes=1))
    alert_log.put(sent)
    assert alert_log.get(entry.alert_id) == sent
    assert len(alert_log.recent()) == 1


def test_the_state_filter_and_an_unknown_id(alert_log):
    for m, state in enumerate([AlertState.SENT, AlertState.FAILED, AlertState.SENT, AlertState.PENDING]):
        alert_log.add(_entry(m, state))
    assert [e.queued_at.minute for e in alert_log.recent(state=AlertState.SENT)] == [2, 0]
    assert [e.state for e in alert_log.recent(state=AlertState.FAILED)] == [AlertState.FAILED]
    assert alert_log.get(new_alert_id(T0)) is None
    assert FakeAlertLog().recent() == []


@pytest.mark.parametrize("limit", [0, 1001, "5"])
def test_a_limit_out_of_range_is_refused_naming_it(alert_log, limit):
    with pytest.raises(InvalidInput) as caught:
        alert_log.recent(limit=limit)
    assert caught.value.field == "limit"


@pytest.mark.parametrize("alert_id", ["", "x" * 10, "123-abc", "../../x"])
def test_an_id_no_alert_could_have_is_refused_and_nothing_written(alert_log, alert_id):
    with pytest.raises(InvalidInput) as caught:
        alert_log.put(replace(_entry(0), alert_id=alert_id))
    assert caught.value.field == "id"
    with pytest.raises(InvalidInput):
        alert_log.get(alert_id)
    assert alert_log.recent() == []
