"""The scaled clock: when jobs run, and how it follows jobs that come, change and go."""

from __future__ import annotations

import time

import pytest

from plldb.local.schedule_sources import Job
from plldb.local.schedule_targets import Target
from plldb.local.schedules import ScheduleNotFoundError, Scheduler

FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:f"


def _job(name, expression="rate(1 minute)", enabled=True):
    arn = f"arn:aws:events:eu-west-1:123456789012:rule/{name}"
    return Job("rule", name, arn, expression, enabled, (Target("t", FUNCTION),))


class _Runs:
    def __init__(self, jobs):
        self.jobs = jobs
        self.runs = []

    def read(self):
        return list(self.jobs)

    def deliver(self, job, moment):
        self.runs.append(job.name)
        return []


@pytest.fixture
def clock():
    made = []

    def make(jobs, scale):
        runs = _Runs(jobs)
        scheduler = Scheduler(runs.read, runs.deliver, scale=scale, refresh_seconds=0.05).start()
        made.append(scheduler)
        return scheduler, runs

    yield make
    for scheduler in made:
        scheduler.stop()


def test_the_scaled_clock_runs_a_minute_rate_every_second_at_scale_60(clock):
    started = time.monotonic()
    _, runs = clock([_job("fast"), _job("off", enabled=False), _job("bad", "rate(1 minutes)")], 60)
    deadline = started + 15  # generous: a loaded machine may run the clock's thread late
    while len(runs.runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    assert runs.runs[:2] == ["fast", "fast"]
    assert elapsed >= 1.9  # one scheduled minute per real second: the second run is at 2 s
    assert set(runs.runs) == {"fast"}  # the disabled and the malformed rule never run


def test_nothing_runs_before_its_time_at_real_scale(clock):
    _, runs = clock([_job("fast")], 1)
    time.sleep(0.5)
    assert runs.runs == []


def test_a_removed_job_stops_and_an_added_one_starts(clock):
    scheduler, runs = clock([_job("first")], 120)
    time.sleep(0.8)
    assert "first" in runs.runs
    runs.jobs[:] = [_job("second")]
    scheduler.refresh()
    seen = len(runs.runs)
    time.sleep(0.8)
    assert set(runs.runs[seen:]) == {"second"}
    assert [job.name for job in scheduler.jobs()] == ["second"]


def test_fire_runs_a_job_now_but_not_a_disabled_one(clock):
    scheduler, runs = clock([_job("daily", "rate(1 day)"), _job("off", enabled=False)], 1)
    scheduler.fire("daily")
    scheduler.fire("off")
    assert runs.runs == ["daily"]
    with pytest.raises(ScheduleNotFoundError):
        scheduler.fire("missing")


def test_the_scale_must_be_positive():
    with pytest.raises(ValueError):
        Scheduler(list, lambda job, moment: [], scale=0)
