"""The start/stop shape every part of the offline cloud shares, with its context manager."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class Service:
    """A part that starts and stops; `with Part(...) as part:` starts it and always stops it."""

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
