"""The clock of the offline cloud: runs scheduled rules and schedules when they are due.

Time can run faster than the wall clock: with `scale` 60, one scheduled minute lasts one real
second, so rate(1 minute) runs every second and cron(0/5 * * * ? *) every five seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plldb.errors import PlldbError
from plldb.local.schedule_delivery import Outcome
from plldb.local.schedule_expressions import (
    At,
    Cron,
    ExpressionError,
    Rate,
    parse_rule_expression,
    parse_schedule_expression,
)
from plldb.local.schedule_sources import Job

log = logging.getLogger(__name__)


class ScheduleNotFoundError(PlldbError):
    """No scheduled rule or schedule has that name or ARN."""


@dataclass
class _Entry:
    job: Job
    expression: Rate | Cron | At | None
    due: datetime | None  # on the scaled clock


class Scheduler:
    """Reads the jobs every `refresh_seconds` (and on `refresh()`), runs each one when due."""

    def __init__(
        self,
        read_jobs: Callable[[], list[Job]],
        deliver: Callable[[Job, datetime], list[Outcome]],
        scale: float = 1.0,
        refresh_seconds: float = 0.5,
    ) -> None:
        """`deliver(job, moment)` runs one job's targets; `moment` is the real time (UTC)."""
        if scale <= 0:
            raise ValueError("schedule scale must be positive")
        self.read_jobs = read_jobs
        self.deliver = deliver
        self.scale = scale
        self.refresh_seconds = refresh_seconds
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._origin = (datetime.now(timezone.utc), time.monotonic())

    def now(self) -> datetime:
        """The scaled clock: the wall clock at start, plus real time elapsed times `scale`."""
        wall, started = self._origin
        return wall + timedelta(seconds=(time.monotonic() - started) * self.scale)

    def start(self) -> Scheduler:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="plldb-schedules", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def refresh(self) -> None:
        """Follow rules and schedules added, changed or removed since the last read."""
        jobs = {(job.kind, job.arn): job for job in self.read_jobs()}
        with self._lock:
            for key in set(self._entries) - set(jobs):
                del self._entries[key]
            now = self.now()
            for key, job in jobs.items():
                entry = self._entries.get(key)
                same = entry and (entry.job.expression, entry.job.timezone) == (
                    job.expression,
                    job.timezone,
                )
                if entry is not None and same:
                    entry.job = job
                    continue
                expression = _parse(job)
                due = expression.next_after(now) if expression else None
                self._entries[key] = _Entry(job, expression, due)
        self._wake.set()

    def jobs(self) -> list[Job]:
        """The rules and schedules on the clock now."""
        with self._lock:
            return [entry.job for entry in self._entries.values()]

    def fire(self, name: str) -> list[Outcome]:
        """Run the rule or schedule named `name` (or with that ARN) now, as if it were due."""
        self.refresh()
        with self._lock:
            found = [e.job for e in self._entries.values() if name in (e.job.name, e.job.arn)]
        if not found:
            raise ScheduleNotFoundError(f"no scheduled rule or schedule named {name}")
        outcomes: list[Outcome] = []
        for job in found:
            if not job.enabled:
                log.info("%s %s is disabled: not run", job.kind, job.name)
                continue
            outcomes.extend(self.deliver(job, datetime.now(timezone.utc)))
        return outcomes

    def _run(self) -> None:
        next_refresh = time.monotonic() + self.refresh_seconds
        while not self._stop.is_set():
            try:
                self._run_due()
            except Exception:  # keep the clock going: one bad job must not stop the others
                log.exception("offline cloud: running schedules failed")
            wait = min(self._seconds_to_next(), next_refresh - time.monotonic())
            self._wake.wait(max(wait, 0.005))
            self._wake.clear()
            if time.monotonic() >= next_refresh and not self._stop.is_set():
                try:
                    self.refresh()
                except Exception:
                    log.exception("offline cloud: reading rules and schedules failed")
                next_refresh = time.monotonic() + self.refresh_seconds

    def _run_due(self) -> None:
        now = self.now()
        with self._lock:
            due = [e for e in self._entries.values() if e.due is not None and e.due <= now]
            for entry in due:
                entry.due = _advance(entry, now)
            jobs = [entry.job for entry in due if entry.job.enabled]
        for job in jobs:
            self.deliver(job, datetime.now(timezone.utc))

    def _seconds_to_next(self) -> float:
        with self._lock:
            dues = [e.due for e in self._entries.values() if e.due is not None]
        if not dues:
            return self.refresh_seconds
        return (min(dues) - self.now()).total_seconds() / self.scale


def _parse(job: Job) -> Rate | Cron | At | None:
    try:
        if job.kind == "rule":
            return parse_rule_expression(job.expression)
        return parse_schedule_expression(job.expression, ZoneInfo(job.timezone))
    except (ExpressionError, ZoneInfoNotFoundError, ValueError) as error:
        log.warning("%s %s is never run offline: %s", job.kind, job.name, error)
        return None


def _advance(entry: _Entry, now: datetime) -> datetime | None:
    """The next run after `now`; runs missed while the machine slept are not made up."""
    expression, due = entry.expression, entry.due
    if isinstance(expression, Rate) and due is not None:
        while due <= now:
            due = expression.next_after(due)
        return due
    return expression.next_after(now) if expression is not None else None
