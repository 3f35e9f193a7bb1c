"""SIGINT and SIGTERM become a stop request while attach runs; a second one interrupts."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from plldb.attach.signals import stop_on_signals


def deliver(number: int) -> None:
    os.kill(os.getpid(), number)
    time.sleep(0.02)  # Python runs the handler in the main thread at its next check


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_sets_stop_and_a_second_interrupts(guard, number):
    stop = threading.Event()
    with stop_on_signals(stop):
        deliver(number)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            deliver(number)
    assert guard == []


def test_the_previous_handlers_come_back(guard):
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(threading.Event()):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    deliver(signal.SIGTERM)
    assert guard == [signal.SIGTERM]


def test_outside_the_main_thread_nothing_is_installed(guard):
    seen = []

    def run() -> None:
        with stop_on_signals(threading.Event()):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert seen == [signal.getsignal(signal.SIGTERM)]
