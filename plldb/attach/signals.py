"""Turns SIGINT and SIGTERM into a stop request for the attach loop, for as long as it runs."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Received:
    """The signal that asked attach to stop, if one did."""

    number: int | None = None


@contextlib.contextmanager
def stop_on_signals(
    stop: threading.Event, signals: tuple[signal.Signals, ...] = STOP_SIGNALS
) -> Iterator[Received]:
    """Set `stop` on the first signal; a second one raises KeyboardInterrupt (close hangs).

    Handlers can only be installed from the main thread; elsewhere this does nothing and the
    caller's own `stop` is the only way out. The previous handlers come back afterwards.
    """
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if received.number is not None:
            raise KeyboardInterrupt
        log.debug("signal %s: stopping", signal.Signals(signum).name)
        received.number = signum
        stop.set()

    previous = {number: signal.signal(number, handle) for number in signals}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            # None means a handler installed outside Python; the default is the closest.
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
