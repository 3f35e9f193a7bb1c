"""The journey's target and state, one per module; cleanup runs in the finalizer, always."""

from __future__ import annotations

import sys

import pytest

from .journey import Journey
from .targets import select_target


@pytest.fixture(scope="module")
def target():
    chosen = select_target()  # JourneyConfigError (an error, never a skip) without the opt-in
    chosen.start()
    try:
        yield chosen
    finally:
        chosen.stop()


@pytest.fixture(scope="module")
def journey(target, tmp_path_factory):
    state = Journey(target, tmp_path_factory.mktemp("journey-build"))
    print(f"\njourney on {target.describe()}: stack {state.stack}", file=sys.stderr)
    try:
        yield state
    finally:
        left = state.cleanup()
        # A leftover is an error of the run, with what to remove by hand.
        assert not left, "cleanup could not remove (delete by hand): " + "; ".join(left)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    journey = getattr(item, "funcargs", {}).get("journey")
    if report.failed and isinstance(journey, Journey) and journey.failed_step is None:
        journey.failed_step = item.name  # the later steps then fail at once, naming this one
    return report
