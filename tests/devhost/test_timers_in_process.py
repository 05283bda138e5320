"""Timer schedules and the singleton rule, in-process, with the real Invoker and azure.functions objects."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path

import azure.functions as func
import pytest

from devhost.app_loader import index_functions
from devhost.invocation import Invoker
from devhost.timers import PAST_DUE_THRESHOLD, Firing, TimerRunner, parse_schedule

T0 = dt.datetime(2024, 5, 1, 10, 0, 0, 500_000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("*/5 * * * * *", dt.datetime(2024, 5, 1, 10, 0, 5, tzinfo=dt.UTC)),
        ("0 */15 * * * *", dt.datetime(2024, 5, 1, 10, 15, tzinfo=dt.UTC)),
        ("0 30 9 * * *", dt.datetime(2024, 5, 2, 9, 30, tzinfo=dt.UTC)),
        ("0 0 0 * * SUN", dt.datetime(2024, 5, 5, tzinfo=dt.UTC)),
        ("*/10 * * * *", dt.datetime(2024, 5, 1, 10, 10, tzinfo=dt.UTC)),  # five fields: minutes first
        ("00:05:00", T0 + dt.timedelta(minutes=5)),  # TimeSpan: an interval
    ],
)
def test_next_occurrence_in_utc(schedule: str, expected: dt.datetime) -> None:
    assert parse_schedule(schedule).next_after(T0) == expected


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("* * * *", "six fields"),
        ("* * * * * * * *", "six fields"),
        ("61 * * * * *", "not a valid NCRONTAB"),
        ("0 0 0 * * FUNDAY", "not a valid NCRONTAB"),
        ("00:00:00", "longer than zero"),
    ],
)
def test_bad_schedules_say_why(schedule: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(schedule)


def test_past_due_only_beyond_the_threshold() -> None:
    assert not Firing(scheduled=T0, fired=T0 + PAST_DUE_THRESHOLD).past_due
    assert Firing(scheduled=T0, fired=T0 + PAST_DUE_THRESHOLD + dt.timedelta(milliseconds=1)).past_due


def test_a_timer_run_is_skipped_while_the_previous_one_runs(tmp_path: Path) -> None:
    release = threading.Event()
    seen: list[bool] = []
    app = func.FunctionApp()

    @app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer")
    def slow(timer: func.TimerRequest) -> None:
        seen.append(timer.past_due)
        release.wait(5)

    (spec,) = index_functions(app)
    invoker = Invoker(function_directory=tmp_path)
    runner = TimerRunner(spec, invoker)

    async def scenario() -> tuple[object, object]:
        first = asyncio.create_task(runner.fire(Firing(scheduled=T0, fired=T0 + dt.timedelta(seconds=3))))
        while not seen:
            await asyncio.sleep(0.01)
        second = await runner.fire(Firing(scheduled=T0, fired=T0))
        release.set()
        return await first, second

    try:
        first, second = asyncio.run(scenario())
    finally:
        invoker.shutdown()
    assert second is None
    assert first is not None and first.succeeded
    assert seen == [True]


def test_an_admin_run_goes_ahead_while_a_scheduled_run_is_going(tmp_path: Path) -> None:
    """The admin API answered 202, so its run must happen: the singleton guards the schedule, not direct calls."""
    release = threading.Event()
    seen: list[str] = []
    app = func.FunctionApp()

    @app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer")
    def slow(timer: func.TimerRequest) -> None:
        seen.append("past due" if timer.past_due else "on time")
        if len(seen) == 1:
            release.wait(5)

    (spec,) = index_functions(app)
    invoker = Invoker(function_directory=tmp_path)
    runner = TimerRunner(spec, invoker)

    async def scenario() -> tuple[object, object]:
        scheduled = asyncio.create_task(runner.fire(Firing(scheduled=T0, fired=T0 + dt.timedelta(seconds=3))))
        while not seen:
            await asyncio.sleep(0.01)
        manual = await runner.run_now(reason="This function was programmatically called via the host APIs.")
        release.set()
        return await scheduled, manual

    try:
        scheduled, manual = asyncio.run(scenario())
    finally:
        invoker.shutdown()
    assert scheduled is not None and scheduled.succeeded
    assert manual.succeeded and manual.invocation_id != scheduled.invocation_id
    assert seen == ["past due", "on time"]
