"""Replays recorded invocations against the local handler and compares the answers."""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from plldb.attach.connection import Listener
from plldb.attach.debugger import DebugpySettings
from plldb.attach.invocation import Invocation, InvocationResult
from plldb.attach.invoker import LocalInvoker
from plldb.attach.local_source import SourceMap, SourceNotFoundError, find_template
from plldb.attach.runner import start_debugger
from plldb.recording.compare import answer_diff, replayed_view
from plldb.recording.document import Recording, RecordingError, load


@dataclass(frozen=True)
class Replayed:
    recording: Recording
    result: InvocationResult
    diff: str  # empty when the answer is the recorded one

    @property
    def same(self) -> bool:
        return not self.diff


def recording_paths(target: Path) -> list[Path]:
    """FILE, or the *.json files of DIR in name (so time) order."""
    if target.is_dir():
        paths = sorted(path for path in target.glob("*.json") if path.is_file())
        if not paths:
            raise RecordingError(f"{target}: no recordings (*.json) in this directory")
        return paths
    if not target.exists():
        raise RecordingError(f"{target}: no such file or directory")
    return [target]


def load_all(targets: Sequence[Path], functions: Sequence[str] = ()) -> list[Recording]:
    """The recordings under `targets` whose function name or logical id matches a glob."""
    recordings = [load(path) for target in targets for path in recording_paths(target)]
    if not functions:
        return recordings
    chosen = [
        recording
        for recording in recordings
        if any(
            fnmatch.fnmatchcase(name, glob)
            for glob in functions
            for name in (recording.function_name, recording.logical_id)
        )
    ]
    if not chosen:
        raise RecordingError(
            f"no recording is of a function matching {', '.join(functions)} "
            f"(recorded: {', '.join(sorted({r.function_name for r in recordings}))})"
        )
    return chosen


def local_sources(template: Path, recordings: Sequence[Recording]) -> SourceMap:
    """Each recorded function's local code, found by its logical id in `template`;
    a function the template lacks is a RecordingError before anything runs."""
    sources = SourceMap(template, {r.function_name: (r.logical_id,) for r in recordings})
    for recording in recordings:
        try:
            sources.resolve(recording.function_name)
        except SourceNotFoundError as error:
            raise RecordingError(f"{recording.path}: {error}") from None
    return sources


def invocation_for(recording: Recording, now_ms: int | None = None) -> Invocation:
    """The recorded invocation again, its deadline the recorded timeout from now."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    context = dict(recording.context)
    arn = str(context.pop("invokedFunctionArn", "") or "")
    return Invocation(
        request_id=recording.request_id,
        function_name=recording.function_name,
        event=recording.event,
        deadline_ms=now_ms + recording.timeout_ms,
        invoked_function_arn=arn,
        context=context,
    )


def replay_one(invoker: LocalInvoker, recording: Recording) -> Replayed:
    future = invoker.submit(invocation_for(recording), lambda result: None)
    result = future.result()
    return Replayed(recording, result, answer_diff(recording, replayed_view(recording, result)))


def replay(
    recordings: Sequence[Recording],
    sources: SourceMap,
    *,
    ready: threading.Event | None = None,
) -> Iterator[Replayed]:
    """Run each recording's handler from local source, one after another; `ready` holds the
    first until it is set (an IDE attached)."""
    with LocalInvoker(sources, max_workers=1, ready=ready) as invoker:
        for recording in recordings:
            yield replay_one(invoker, recording)


def replay_command(
    target: Path,
    listener: Listener,
    *,
    functions: Sequence[str] = (),
    template: str | None = None,
    debugpy: DebugpySettings | None = None,
    cwd: Path | None = None,
) -> Iterator[Replayed]:
    """`plldb replay`: every check on the input before anything runs, then each replay."""
    recordings = load_all([target], functions)
    sources = local_sources(find_template(template, cwd or Path.cwd()), recordings)
    server = start_debugger(debugpy, listener, False, cwd) if debugpy else None
    yield from replay(recordings, sources, ready=server.ready if server else None)
