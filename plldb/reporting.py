"""How library code reports progress without printing: the command layer supplies a Reporter."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


class Reporter:
    """Progress sink. This base class only logs; plldb.console draws bars and prints."""

    @contextlib.contextmanager
    def task(self, label: str, total: int, unit: str = "it") -> Iterator[Callable[[int], None]]:
        """A unit of work of known size; the yielded function advances it."""
        log.debug("%s (%d %s)", label, total, unit)
        yield lambda amount: None

    def notice(self, message: str) -> None:
        log.info("%s", message)

    def stack_event(self, line: str, failed: bool = False) -> None:
        log.info("%s", line)
