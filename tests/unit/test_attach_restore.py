"""What attach reports after detaching: the functions it saw instrumented, and their restore."""

from __future__ import annotations

import threading
import time

from botocore.exceptions import ClientError

from plldb.attach.connection import Listener
from plldb.attach.restore import InstrumentedFunctions, RestoreReport, await_restore
from plldb.attach.workers import DaemonPool


class Recorder(Listener):
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def message(self, message: dict) -> None:
        self.messages.append(message)


class FakeLambda:
    """Each function's session variable; the "backend" removes it after `restores_after` reads."""

    def __init__(self, carrying: dict[str, str], restores_after: int = 0, error: str = "") -> None:
        self.carrying = dict(carrying)
        self.reads = 0
        self.restores_after = restores_after
        self.error = error

    def get_function_configuration(self, FunctionName: str) -> dict:
        if self.error:
            raise ClientError({"Error": {"Code": self.error}}, "GetFunctionConfiguration")
        self.reads += 1
        if self.reads > self.restores_after:
            self.carrying.pop(FunctionName, None)
        session = self.carrying.get(FunctionName)
        return {"Environment": {"Variables": {"PLLDB_SESSION_ID": session} if session else {}}}


def test_the_instrumented_progress_lines_name_the_functions():
    inner = Recorder()
    seen = InstrumentedFunctions(inner)
    for text in ("instrumented 1/3: orders-api", "skipped 2/3: web", "instrumented 3/3: jobs"):
        seen.message({"type": "info", "message": text})
    seen.message({"type": "error", "message": "instrumented 1/1: not-progress"})
    assert seen.names == {"orders-api", "jobs"}
    assert len(inner.messages) == 4  # everything still reaches the printer


def test_restored_functions_are_counted_once_none_carries_the_session():
    client = FakeLambda({"a": "s1", "b": "s2"}, restores_after=3)
    report = await_restore(client, {"a", "b"}, {"s1", "s2"}, timeout=5, poll=0)
    assert report == RestoreReport(("a", "b"))
    assert report.line() == "restored 2 functions"
    assert client.reads > 2  # it looked again until the restore showed


def test_a_slow_restore_is_reported_as_pending_not_as_done():
    client = FakeLambda({"a": "s1", "b": "other-session"}, restores_after=10**6)
    report = await_restore(client, {"a", "b"}, {"s1"}, timeout=0.05, poll=0.01)
    assert report.restored == ("b",) and report.pending == ("a",)
    assert report.line() == (
        "restored 1 of 2 functions; the backend is still restoring a and finishes without plldb"
    )


def test_without_read_permission_the_report_says_it_did_not_check():
    report = await_restore(FakeLambda({"a": "s1"}, error="AccessDeniedException"), {"a"}, {"s1"})
    assert report.line() == (
        "the backend restores the 1 function plldb instrumented "
        "(not checked: AccessDeniedException)"
    )
    assert await_restore(FakeLambda({}), set(), {"s1"}).line() == "restored 0 functions"


def test_the_daemon_pool_bounds_its_threads_and_does_not_wait_for_stuck_calls():
    pool = DaemonPool(2, "test")
    running, release = [], threading.Event()

    def work(n: int) -> int:
        running.append(n)
        release.wait(10)
        return n

    futures = [pool.submit(work, n) for n in range(3)]
    time.sleep(0.2)
    assert len(running) == 2  # the third waits for a slot
    started = time.monotonic()
    assert pool.shutdown(0.2) == 3  # still running (or waiting): left behind
    assert time.monotonic() - started < 2
    assert all(thread.daemon for thread in threading.enumerate() if thread.name.startswith("test_"))
    release.set()
    assert sorted(f.result(timeout=5) for f in futures) == [0, 1, 2]
    assert pool.shutdown(1) == 0
