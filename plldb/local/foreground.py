"""Runs the offline cloud in the foreground until Ctrl-C or SIGTERM, as `plldb local up` does."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from plldb.errors import PlldbError


def run_until_stopped(
    emit: Callable[[str], None], notice: Callable[[str], None], **cloud_options: Any
) -> None:
    """Start everything, `emit` the shell lines that point AWS tools here, wait, stop everything.

    `cloud_options` are OfflineCloud's keyword arguments (region, moto_port, the limits, ...).
    """
    schedule_scale = cloud_options.get("schedule_scale", 1.0)
    if not schedule_scale > 0:
        raise PlldbError(f"--schedule-scale must be a positive number, not {schedule_scale}")
    require_local_extra()
    from plldb.local.cloud import OfflineCloud
    from plldb.local.instance import Instance

    instance = Instance()
    instance.claim()  # before any port is taken: a second cloud stops here, in one line
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    try:
        with OfflineCloud(**cloud_options) as cloud:
            instance.record(cloud.endpoints(), cloud.environment())
            for name, value in cloud.environment().items():
                emit(f"export {name}={value}")
            for part, address in cloud.endpoints().items():
                notice(f"{part:<22} {address}")
            notice("offline cloud ready; Ctrl-C or SIGTERM stops it")
            try:
                while not stopping.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            notice("stopping the offline cloud")
    finally:
        signal.signal(signal.SIGTERM, previous)
        instance.release()


# The `local` extra: moto's server, AWS's Lambda runtime client, WebSockets.
LOCAL_EXTRA = ("moto", "flask", "awslambdaric", "websockets")


def require_local_extra() -> None:
    """One clear error, not an ImportError from deep inside, when the `local` extra is missing."""
    missing = [name for name in LOCAL_EXTRA if not _importable(name)]
    if missing:
        raise PlldbError(
            f"the offline cloud needs {', '.join(missing)}, from the `local` extra: "
            'pip install -e ".[local]" in a checkout (or the dev extra), '
            "pip install 'plldb[local]' otherwise"
        )


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False
