"""The pytest plugin (entry point pytest11): recorded invocations replayed as tests.

from plldb.testing import load_recording, recordings

@pytest.mark.parametrize("recording", recordings("recordings"))
def test_recorded_answers_hold(plldb_replay, recording):
    assert plldb_replay(recording) == load_recording(recording).response
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from plldb.recording.document import Recording

# Loaded by every pytest run where plldb is installed: plldb's modules are imported on use only.

__all__ = ["HandlerFailed", "load_recording", "plldb_replay", "recordings"]


class HandlerFailed(AssertionError):
    """The replayed handler raised: its error type, message and traceback."""

    def __init__(self, error: dict[str, Any]) -> None:
        trace = "".join(str(line) for line in error.get("stackTrace", []))
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}\n{trace}")
        self.error = error


def _caller_dir() -> Path:
    frame = inspect.stack()[2]
    return Path(frame.filename).resolve().parent


def recordings(directory: str | Path, pattern: str = "*.json") -> list[Any]:
    """pytest params, one per recording in `directory` (relative: to the calling test file),
    in time order, each with the file's name as its id."""
    root = Path(directory)
    if not root.is_absolute():
        root = _caller_dir() / root
    paths = sorted(root.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no recordings ({pattern}) in {root}")
    return [pytest.param(path, id=path.stem) for path in paths]


def load_recording(path: str | Path) -> Recording:
    """The recording at `path`: its event, its recorded `response` or `error`, its context."""
    from plldb.recording.document import load

    return load(Path(path))


def find_project_template(start: Path) -> Path:
    """The template of the project a recording belongs to: the nearest one from its folder up."""
    from plldb.attach.local_source import TEMPLATE_NAMES

    for folder in (start, *start.parents):
        for name in TEMPLATE_NAMES:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"no template ({', '.join(TEMPLATE_NAMES)}) in {start} or above")


def replay_answer(path: Path, template: Path | None = None) -> Any:
    """Run the recording's handler from local source; its answer redacted as the recording
    was (so a redacted value compares equal), or HandlerFailed."""
    from plldb.recording.compare import replayed_view
    from plldb.recording.replay import local_sources, replay

    recording = load_recording(path)
    template = template or find_project_template(path.resolve().parent)
    (replayed,) = replay([recording], local_sources(template, [recording]))
    if replayed.result.error is not None:
        raise HandlerFailed(replayed.result.error)
    return replayed_view(recording, replayed.result)["response"]


@pytest.fixture
def plldb_replay(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """`plldb_replay(path, template=None)` -> the local handler's answer to the recorded event,
    redacted like the recording.

    A relative path is taken from the test file's folder; the template is the nearest
    template.yaml/.yml/.json from the recording's folder up, unless given.
    """
    here = Path(str(request.path)).parent

    def run(path: str | Path, template: str | Path | None = None) -> Any:
        path = Path(path)
        if not path.is_absolute():
            path = here / path
        return replay_answer(path, Path(template) if template else None)

    return run
