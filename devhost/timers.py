"""Timer triggers: NCRONTAB schedules (six fields, seconds first; five-field cron too, as the host accepts it) and
TimeSpan schedules ("hh:mm:ss", an interval), evaluated in UTC with croniter.

Each timer is a singleton, like the host's: a scheduled run never overlaps the previous one of the same timer;
occurrences that fall while a run is still going are skipped (and logged), not queued. The singleton guards the
schedule only: a run asked for through the admin API goes ahead even while a scheduled run is going, as in the host
(whose timer lock is held by the schedule listener, not by direct calls). A run that starts later than its scheduled
time by more than PAST_DUE_THRESHOLD (the process was suspended, the machine slept) gets `TimerRequest.past_due ==
True` and a "past due" log line. devhost keeps no schedule status between runs of the host, so a run missed while
devhost was not running is not reported (Azure's schedule monitor would report it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from croniter import croniter
from croniter.croniter import CroniterError

from devhost import trigger_inputs
from devhost.app_loader import FunctionSpec
from devhost.invocation import InvocationOutcome, Invoker
from devhost.settings import SettingsError, parse_timespan

log = logging.getLogger("devhost")

PAST_DUE_THRESHOLD = dt.timedelta(seconds=1)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: `next_after(t)` is the first occurrence strictly after t (UTC)."""

    text: str
    cron: str | None = None
    interval: dt.timedelta | None = None

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        if self.interval is not None:
            return moment + self.interval
        assert self.cron is not None
        six_fields = len(self.cron.split()) == 6
        iterator = croniter(self.cron, moment.astimezone(dt.UTC), second_at_beginning=six_fields)
        return iterator.get_next(dt.datetime).astimezone(dt.UTC)


def parse_schedule(text: str) -> Schedule:
    """NCRONTAB ("*/5 * * * * *") or TimeSpan ("00:05:00"); a clear ValueError otherwise."""
    stripped = text.strip()
    fields = stripped.split()
    if len(fields) == 1 and ":" in stripped:
        try:
            interval = parse_timespan(stripped, where=f"timer schedule {text!r}")
        except SettingsError as error:
            raise ValueError(str(error)) from None
        if interval <= dt.timedelta(0):
            raise ValueError(f"timer schedule {text!r}: a TimeSpan schedule must be longer than zero")
        return Schedule(text=stripped, interval=interval)
    if len(fields) not in (5, 6):
        raise ValueError(
            f"timer schedule {text!r}: NCRONTAB needs six fields (second minute hour day month day-of-week), "
            f"got {len(fields)}"
        )
    try:
        croniter(stripped, second_at_beginning=len(fields) == 6)
    except (CroniterError, ValueError, KeyError) as error:
        raise ValueError(f"timer schedule {text!r}: not a valid NCRONTAB expression ({error})") from None
    return Schedule(text=stripped, cron=" ".join(fields))


@dataclass(frozen=True)
class Firing:
    """The decision for one wake-up: which occurrence it serves and whether it is past due."""

    scheduled: dt.datetime
    fired: dt.datetime

    @property
    def lateness(self) -> dt.timedelta:
        return self.fired - self.scheduled

    @property
    def past_due(self) -> bool:
        return self.lateness > PAST_DUE_THRESHOLD


def _ticks(moment: dt.datetime) -> str:
    """.NET's round-trip format, as the host writes 'Timer fired at ...'."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")


class TimerRunner:
    """Fires one timer function on its schedule until stopped."""

    def __init__(self, spec: FunctionSpec, invoker: Invoker, *, clock: Clock = utc_now) -> None:
        schedule = spec.schedule
        if schedule is None:
            raise ValueError(f"function {spec.name!r}: timer trigger has no schedule")
        self.spec = spec
        self.schedule = parse_schedule(schedule)
        self._invoker = invoker
        self._clock = clock
        self._running = asyncio.Lock()
        self._last: dt.datetime | None = None
        self._next: dt.datetime | None = None
        self._monitored = spec.trigger.get("useMonitor", True) is not False

    async def run(self) -> None:
        """The schedule loop; `run_on_startup` fires once first, without delaying the schedule."""
        now = self._clock()
        self._next = self.schedule.next_after(now)
        log.info(
            "Functions.%s: next run at %s (schedule %r, UTC)", self.spec.name, _ticks(self._next), self.schedule.text
        )
        startup = asyncio.create_task(self.fire(Firing(scheduled=now, fired=now))) if self.spec.run_on_startup else None
        try:
            await self._schedule_loop()
        finally:
            if startup is not None and not startup.done():
                startup.cancel()

    async def _schedule_loop(self) -> None:
        assert self._next is not None
        while True:
            due = self._next
            await self._sleep_until(due)
            firing = Firing(scheduled=due, fired=self._clock())
            self._next = self.schedule.next_after(max(due, firing.fired))
            await self.fire(firing)
            now = self._clock()
            if self._next <= now:
                skipped_until = self._next
                self._next = self.schedule.next_after(now)
                log.warning(
                    "Functions.%s: skipped occurrences up to %s while the previous run was still in progress",
                    self.spec.name,
                    _ticks(skipped_until),
                )

    async def fire(self, firing: Firing, *, reason: str | None = None) -> InvocationOutcome | None:
        """Runs the function once unless a run of this timer is in progress (singleton: then it is skipped)."""
        if self._running.locked():
            log.warning(
                "Functions.%s: run for %s skipped: the previous run is still in progress",
                self.spec.name,
                _ticks(firing.scheduled),
            )
            return None
        async with self._running:
            if firing.past_due:
                log.warning(
                    "Functions.%s: timer is past due: scheduled for %s, fired %.1fs late",
                    self.spec.name,
                    _ticks(firing.scheduled),
                    firing.lateness.total_seconds(),
                )
            outcome = await self._invoke(firing, reason or f"Timer fired at {_ticks(firing.fired)}")
            self._last = firing.scheduled
            return outcome

    async def run_now(self, *, reason: str) -> InvocationOutcome:
        """Runs the function once now, outside the singleton, as the admin API does in the host.

        The caller was told its run was accepted (202), so it must not be dropped because a scheduled run happens to
        be going; the schedule status (`last`) is left to the schedule, which this run is not part of.
        """
        now = self._clock()
        return await self._invoke(Firing(scheduled=now, fired=now), reason)

    async def _invoke(self, firing: Firing, reason: str) -> InvocationOutcome:
        return await self._invoker.invoke(
            self.spec,
            reason=reason,
            build_input=lambda: trigger_inputs.timer_request(
                past_due=firing.past_due,
                last=self._last,
                next_run=self._next,
                now=firing.fired,
                monitored=self._monitored,
            ),
        )

    async def _sleep_until(self, due: dt.datetime) -> None:
        # asyncio sleeps on the monotonic clock; re-check the wall clock so an early wake-up never fires early
        while (remaining := (due - self._clock()).total_seconds()) > 0:
            await asyncio.sleep(remaining)
