"""A bounded pool of daemon threads: relayed invocations that never hold up the CLI's exit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class DaemonPool:
    """Runs each submitted call on a daemon thread, at most `max_workers` at a time.

    concurrent.futures' workers are joined when the interpreter exits, so one handler stopped
    at a breakpoint (or sleeping) would keep a detached CLI alive; these threads are not.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        self._slots = threading.BoundedSemaphore(max_workers)
        self._name = name
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._count = 0

    def submit(self, call: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def run() -> None:
            try:
                with self._slots:
                    if not future.set_running_or_notify_cancel():
                        return
                    try:
                        future.set_result(call(*args))
                    except BaseException as error:  # handed to the caller through the future
                        future.set_exception(error)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        with self._lock:
            self._count += 1
            thread = threading.Thread(target=run, name=f"{self._name}_{self._count}", daemon=True)
            self._threads.add(thread)
        thread.start()
        return future

    def shutdown(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the running calls; how many still run."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(thread.is_alive() for thread in threads)
