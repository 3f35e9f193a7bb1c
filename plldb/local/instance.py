"""One `plldb local up` per user: a lock held while it runs, and a note of where it listens.

The lock (flock on a file in the user's state directory) is released by the kernel when the
process ends however it ends, so a crashed cloud never blocks the next one; the note next to it
says where the running one listens, for the error a second start gives.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from plldb.errors import PlldbError


def state_dir() -> Path:
    """$XDG_STATE_HOME/plldb, by default ~/.local/state/plldb."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "plldb"


class AlreadyRunning(PlldbError):
    """Another offline cloud of this user is up."""


class Instance:
    """Claim with `claim()`, publish the addresses with `record()`, give up with `release()`."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or state_dir()
        self.lock_path = self.directory / "offline-cloud.lock"
        self.note_path = self.directory / "offline-cloud.json"
        self._lock: IO[str] | None = None

    def claim(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = self.lock_path.open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise AlreadyRunning(self._running_message()) from None
        self._lock = lock
        self.note_path.unlink(missing_ok=True)  # a note left by a cloud that died

    def record(self, endpoints: dict[str, str], environment: dict[str, str]) -> None:
        note = {"pid": os.getpid(), "endpoints": endpoints, "environment": environment}
        temporary = self.note_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(note, indent=2))
        temporary.replace(self.note_path)

    def release(self) -> None:
        if self._lock is None:
            return
        self.note_path.unlink(missing_ok=True)
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()
        self._lock = None

    def _running_message(self) -> str:
        try:
            note = json.loads(self.note_path.read_text())
        except (OSError, ValueError):
            return (
                "an offline cloud is already starting for this user "
                f"(lock {self.lock_path}); use it, or stop it first"
            )
        moto = note.get("endpoints", {}).get("moto", "?")
        return (
            f"an offline cloud is already running at {moto} (pid {note.get('pid', '?')}); "
            f"use it (its settings are in {self.note_path}) or stop it first"
        )
