"""Writes each invocation the CLI ran locally to its own file in a directory."""

from __future__ import annotations

import logging
from pathlib import Path

from plldb.errors import PlldbError
from plldb.recording.document import Ran, build, dumps, file_name
from plldb.recording.redact import NO_RULES, Redactions

logger = logging.getLogger(__name__)


class DirectoryRecorder:
    """The `attach --record DIR` recorder: one redacted JSON file per invocation."""

    def __init__(self, directory: Path, rules: Redactions = NO_RULES) -> None:
        self.directory = Path(directory)
        self.rules = rules
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise PlldbError(f"--record {directory}: cannot create it: {error}") from None
        if not self.directory.is_dir():
            raise PlldbError(f"--record {directory}: not a directory")

    def __str__(self) -> str:
        return str(self.directory)

    def record(self, ran: Ran) -> Path:
        """Write `ran` and say where; two invocations in the same millisecond get two files."""
        text = dumps(build(ran, self.rules))
        name = file_name(ran)
        for attempt in range(1, 100):
            numbered = name if attempt == 1 else name.replace(".json", f"-{attempt}.json")
            path = self.directory / numbered
            try:
                with path.open("x", encoding="utf-8") as file:
                    file.write(text)
            except FileExistsError:
                continue
            logger.debug("recorded request %s in %s", ran.invocation.request_id, path)
            return path
        raise FileExistsError(f"no free file name for {name} in {self.directory}")
