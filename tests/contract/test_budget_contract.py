"""Shared re-wrap budget semantics every backend must keep: racing reservers never over-spend a window, a full window
says when the next opens, and the next window grants again. Runs the fake and the Table adapter on Azurite."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import InvalidInput
from tests.contract.conftest import STORAGE_MODES, identity_table
from tests.fakes.budget import FakeRewrapBudget
from tests.support.azurite import start_azurite

WINDOW = timedelta(seconds=10)
START = datetime(2026, 12, 1, 23, 0, 0, tzinfo=UTC)  # a window boundary (epoch-aligned 10 s windows)
SCOPE = "kv-cmk-reference.vault.azure.net"
RACERS = 8


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-budget"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=STORAGE_MODES)
def budget(request):
    if request.param == "fake":
        return FakeRewrapBudget()
    from shared.azure.budget import TableRewrapBudget
    from shared.azure.tables import LazyTable, table_client

    if request.param == "azurite-identity":
        name = f"budget{uuid.uuid4().hex[:12]}"
        return TableRewrapBudget(identity_table(request.getfixturevalue("azurite_oauth"), name))
    connection = request.getfixturevalue("azurite").connection_string
    return TableRewrapBudget(LazyTable(table_client(f"budget{uuid.uuid4().hex[:12]}", connection_string=connection)))


def _reserve(budget, want: int, now: datetime, limit: int = 50, scope: str = SCOPE):
    return budget.reserve(scope, want, now=now, limit_per_window=limit, window=WINDOW)


def test_eight_racing_reservers_get_exactly_the_limit_and_the_next_window_grants_again(budget):
    barrier = threading.Barrier(RACERS)
    grants: list = [None] * RACERS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            grants[i] = _reserve(budget, 10, START + timedelta(seconds=2))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(g.granted for g in grants) == 50
    assert all(0 <= g.granted <= 10 for g in grants)
    late = _reserve(budget, 10, START + timedelta(seconds=2))
    assert late.granted == 0 and late.retry_after == pytest.approx(8.0)
    assert _reserve(budget, 10, START + WINDOW).granted == 10


def test_a_reservation_gets_what_remains_and_scopes_are_separate(budget):
    assert _reserve(budget, 30, START).granted == 30
    assert _reserve(budget, 30, START + timedelta(seconds=1)).granted == 20
    assert _reserve(budget, 30, START, scope="other.vault.azure.net").granted == 30
    empty = _reserve(budget, 1, START + timedelta(seconds=9, milliseconds=500))
    assert (empty.granted, empty.retry_after) == (0, pytest.approx(0.5))


def test_a_lagging_clock_never_reopens_an_older_window(budget):
    assert _reserve(budget, 50, START + WINDOW).granted == 50
    lagging = _reserve(budget, 10, START + timedelta(seconds=9))
    assert lagging.granted == 0 and lagging.retry_after == pytest.approx(11.0)


def test_nothing_wanted_spends_nothing(budget):
    assert _reserve(budget, 0, START).granted == 0
    assert _reserve(budget, 50, START).granted == 50


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("want", {"want": -1}),
        ("limit_per_window", {"limit_per_window": 0}),
        ("window", {"window": timedelta(0)}),
        ("scope", {"scope": ""}),
    ],
)
def test_bad_requests_name_their_argument(budget, field, kwargs):
    args = {"scope": SCOPE, "want": 1, "now": START, "limit_per_window": 50, "window": WINDOW} | kwargs
    scope, want = args.pop("scope"), args.pop("want")
    with pytest.raises(InvalidInput) as exc:
        budget.reserve(scope, want, **args)
    assert exc.value.field == field
