"""Audit trail semantics every backend must keep: every field round-trips, newest first across keys, `key` and `since`
filter, pages visit each record once, foreign tokens are refused, an oversize detail is cut rather than refused.
Runs the fake and the Table adapter on Azurite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.audit import MAX_DETAIL_CHARS, TRUNCATED, AuditRecord
from shared.errors import InvalidInput
from tests.contract.conftest import STORAGE_MODES, identity_table
from tests.fakes.audit import FakeAuditTrail
from tests.support.azurite import start_azurite

T0 = datetime(2026, 12, 1, 22, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-audit"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=STORAGE_MODES)
def trail(request):
    if request.param == "fake":
        return FakeAuditTrail()
    from shared.azure.audit import TableAuditTrail
    from shared.azure.tables import LazyTable, table_client

    name = f"audit{uuid.uuid4().hex[:12]}"
    if request.param == "azurite-identity":
        return TableAuditTrail(identity_table(request.getfixturevalue("azurite_oauth"), name))
    connection = request.getfixturevalue("azurite").connection_string
    return TableAuditTrail(LazyTable(table_client(name, connection_string=connection)))


def _record(minute: int, key: str = "mysql-encryption-key", **kw) -> AuditRecord:
    fields = {
        "record_id": uuid.uuid4().hex,
        "at": T0 + timedelta(minutes=minute),
        "action": "rotate",
        "trigger": "timer",
        "key": key,
        "outcome": "rotated",
    }
    return AuditRecord(**{**fields, **kw})


def _all(trail, **kw) -> list[AuditRecord]:
    seen, token = [], None
    while True:
        page = trail.page(continuation=token, **kw)
        seen += page.items
        token = page.continuation
        if token is None:
            return seen


def _detail_of(trail, record_id: str) -> dict:
    return next(r.detail for r in _all(trail) if r.record_id == record_id)


def test_every_field_round_trips(trail):
    full = _record(
        1,
        at=T0 + timedelta(seconds=7, microseconds=654321),
        trigger="operator:alice@example.com",
        from_version="0123456789abcdef",
        to_version="fedcba9876543210",
        duration_ms=12_345_678_901,
        detail={"reason": "quarterly", "n": 3, "nested": {"ok": True, "list": [1, "ü"]}},
    )
    bare = _record(2, key="aks-encryption-key", outcome="superseded")
    assert trail.append(full) == full
    trail.append(bare)
    assert trail.page().items == (bare, full)
    back = {r.record_id: r for r in trail.page().items}
    assert back[full.record_id].detail == full.detail and back[bare.record_id].detail == {}
    assert (back[bare.record_id].from_version, back[bare.record_id].to_version) == (None, None)
    assert back[full.record_id].at == full.at and back[full.record_id].duration_ms == 12_345_678_901


def test_newest_first_across_keys_whatever_the_order_of_appends(trail):
    records = [_record(m, key=k) for m, k in [(5, "a-key"), (1, "b-key"), (9, "a-key"), (3, "c-key")]]
    for r in records:
        trail.append(r)
    assert [r.at for r in _all(trail, page_size=3)] == sorted((r.at for r in records), reverse=True)


def test_records_of_one_instant_come_in_id_order_and_once(trail):
    same = [_record(0, record_id=rid) for rid in ("c" * 32, "a" * 32, "b" * 32)]
    for r in same:
        trail.append(r)
    trail.append(same[0])  # a retried append keeps one record
    assert [r.record_id for r in _all(trail, page_size=2)] == ["a" * 32, "b" * 32, "c" * 32]


def test_key_and_since_filter_and_combine(trail):
    for m in range(6):
        trail.append(_record(m, key="mysql-encryption-key" if m % 2 else "aks-encryption-key"))
    since = T0 + timedelta(minutes=2)
    assert [r.at.minute for r in _all(trail, since=since)] == [5, 4, 3, 2]  # at or after `since`
    assert [r.at.minute for r in _all(trail, key="MySQL-Encryption-Key")] == [5, 3, 1]  # key names ignore case
    assert [r.at.minute for r in _all(trail, key="mysql-encryption-key", since=since, page_size=1)] == [5, 3]
    assert _all(trail, key="no-such-key") == []
    assert trail.page(since=T0 + timedelta(hours=1)).items == ()


def test_action_and_outcome_filter_past_any_number_of_other_records(trail):
    trail.append(_record(0, action="revocation", outcome="executed"))
    for m in range(1, 8):  # newer records of another action: a first page of all records would miss the revocation
        trail.append(_record(m, action="rewrap-page", outcome="rewrapped"))
    trail.append(_record(8, action="revocation", outcome="verified", key="aks-encryption-key"))
    assert [r.at.minute for r in _all(trail, action="revocation", page_size=1)] == [8, 0]
    [first] = trail.page(action="revocation", page_size=1).items[-1:]
    assert first.at.minute == 8
    assert [r.at.minute for r in _all(trail, action="revocation", outcome="executed")] == [0]
    assert [r.at.minute for r in _all(trail, outcome="verified", key="aks-encryption-key")] == [8]
    assert _all(trail, action="revocation", key="mysql-encryption-key", outcome="verified") == []
    assert _all(trail, action="no-such-action") == []


def test_pages_visit_every_record_once_and_the_last_says_so(trail):
    records = [_record(m) for m in range(7)]
    for r in records:
        trail.append(r)
    sizes, token = [], None
    while True:
        page = trail.page(continuation=token, page_size=3)
        sizes.append(len(page.items))
        token = page.continuation
        if token is None:
            break
    assert sizes == [3, 3, 1]
    exact = trail.page(page_size=7)
    assert len(exact.items) == 7 and exact.continuation is None  # no empty page after an exact fit
    assert [r.record_id for r in _all(trail, page_size=3)] == [r.record_id for r in reversed(records)]


def test_an_empty_trail_has_one_empty_page(trail):
    page = trail.page()
    assert page.items == () and page.continuation is None


@pytest.mark.parametrize("token", ["12", "not a token", "eyJ2IjoxfQ", "e30", "%%%", "eyJ2IjoxLCJzdGFydCI6Ilx1MDAyNyJ9"])
def test_a_token_this_store_did_not_issue_is_refused_naming_continuation(trail, token):
    trail.append(_record(0))
    with pytest.raises(InvalidInput) as err:
        trail.page(continuation=token)
    assert err.value.field == "continuation"


@pytest.mark.parametrize("page_size", [0, -1, 1001])
def test_a_page_size_out_of_range_is_refused_naming_it(trail, page_size):
    with pytest.raises(InvalidInput) as err:
        trail.page(page_size=page_size)
    assert err.value.field == "page_size"


@pytest.mark.parametrize("record_id", ["", "has space", "a/b", "x" * 65])
def test_a_record_id_unfit_for_a_sort_key_is_refused_and_nothing_appended(trail, record_id):
    with pytest.raises(InvalidInput) as err:
        trail.append(_record(0, record_id=record_id))
    assert err.value.field == "record_id"
    assert trail.page().items == ()


def test_an_oversize_detail_is_cut_with_a_marker_and_the_record_kept(trail):
    big = _record(0, detail={"log": "y" * (2 * MAX_DETAIL_CHARS)})
    stored = trail.append(big)
    assert stored.detail[TRUNCATED] is True and stored.detail["original_chars"] > 2 * MAX_DETAIL_CHARS
    assert stored.detail["head"].startswith('{"log": "yyy')
    assert _detail_of(trail, big.record_id) == stored.detail


def test_a_detail_value_json_cannot_hold_is_kept_as_its_text(trail):
    odd = _record(0, detail={"when": T0, "ids": ("a", "b")})
    assert trail.append(odd).detail == {"when": str(T0), "ids": ["a", "b"]}
    assert _detail_of(trail, odd.record_id) == {"when": str(T0), "ids": ["a", "b"]}
