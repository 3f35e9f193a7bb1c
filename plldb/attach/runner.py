"""`plldb attach` from start to end: discover the APIs, create a session, run the loop."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from plldb.attach.connection import ConnectionLoop, Listener, LoopSettings, loop_settings
from plldb.attach.debugger import (
    DebugpySettings,
    DebugServer,
    check_port,
    launch_configuration,
    load_debugpy,
    write_vscode_launch,
)
from plldb.attach.discovery import Endpoints, discover_endpoints
from plldb.attach.dispatch import RelayListener
from plldb.attach.invoker import LocalInvoker, Recorder
from plldb.attach.local_source import SourceMap, find_template, stack_functions
from plldb.attach.restore import InstrumentedFunctions, RestoreReport, await_restore
from plldb.attach.sessions import Session, create_session
from plldb.attach.signals import stop_on_signals
from plldb.aws import AwsTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detached:
    """How an attach ended: the endpoints it used, the stop signal, what it saw restored."""

    endpoints: Endpoints
    signal: int | None
    restore: RestoreReport | None


def local_sources(
    target: AwsTarget, stack_name: str, template: str | None, cwd: Path | None = None
) -> SourceMap:
    """Where the stack's functions live locally; the stack is listed at the first invocation."""
    path = find_template(template, cwd or Path.cwd())
    cloudformation = target.client("cloudformation")
    return SourceMap(path, lambda: stack_functions(cloudformation, stack_name))


def start_debugger(
    settings: DebugpySettings, listener: Listener, write_vscode: bool, cwd: Path | None
) -> DebugServer:
    """debugpy listening in this process, before any session exists; says how to attach."""
    debugpy = load_debugpy()
    check_port(settings.host, settings.port)
    server = DebugServer(settings, debugpy)
    server.start()
    configuration = launch_configuration(settings)
    listener.notice(
        f"debugpy listening on {settings.host}:{settings.port}; VS Code launch configuration:\n"
        + json.dumps(configuration, indent=4)
    )
    if write_vscode:
        listener.notice(write_vscode_launch(cwd or Path.cwd(), configuration))
    if settings.wait_for_client:
        listener.notice("invocations wait until your IDE attaches (--wait-for-client)")
    return server


def _line_buffered_stdout() -> None:
    """A handler's print() shows at once, as in Lambda's logs, also when stdout is a pipe
    (`plldb attach | tee`), where Python would otherwise hold it until its buffer fills."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)


def attach(
    target: AwsTarget,
    stack_name: str,
    listener: Listener,
    *,
    force: bool = False,
    functions: Sequence[str] = (),
    template: str | None = None,
    cwd: Path | None = None,
    function_role: bool = False,
    debugpy: DebugpySettings | None = None,
    write_vscode: bool = False,
    management_api_url: str | None = None,
    websocket_url: str | None = None,
    settings: LoopSettings | None = None,
    stop: threading.Event | None = None,
    environ: Mapping[str, str] | None = None,
    restore_wait_seconds: float = 5.0,
    recorder: Recorder | None = None,
) -> Detached:
    """Attach to `stack_name` until SIGINT, SIGTERM or `stop`; how it ended.

    Relayed invocations run from the local source that `template` (or the template in `cwd`)
    points at, with the developer's credentials, or the function role's with `function_role`;
    `recorder`, when given, keeps each one that ran (`attach --record`).
    Everything that can be checked locally is checked before the session is created.
    Once detached, it waits up to `restore_wait_seconds` for the backend to restore the
    functions it instrumented, and reports what it saw.
    """
    environ = os.environ if environ is None else environ
    settings = loop_settings(environ, settings)
    _line_buffered_stdout()
    endpoints = discover_endpoints(target, management_api_url, websocket_url, environ)
    sources = local_sources(target, stack_name, template, cwd)
    debug_server = start_debugger(debugpy, listener, write_vscode, cwd) if debugpy else None

    session_ids: list[str] = []
    seen = InstrumentedFunctions(listener)
    if recorder is not None:
        listener.notice(f"recording each invocation in {recorder}")

    def new_session(take_over: bool) -> Session:
        session = create_session(
            target,
            endpoints.management_api_url,
            stack_name,
            force=take_over,
            functions=functions,
            function_role=function_role,
        )
        session_ids.append(session.session_id)
        return session

    stop = stop or threading.Event()
    ready = debug_server.ready if debug_server else None
    with LocalInvoker(sources, ready=ready, recorder=recorder) as invoker:
        relay = RelayListener(
            seen, invoker, lambda text: loop.send(text), function_role=function_role
        )
        loop = ConnectionLoop(
            endpoints.websocket_url, new_session, relay, stop, settings, stack_name=stack_name
        )
        with stop_on_signals(stop) as received:
            loop.run(force=force)
    log.debug("detached from stack %s after %d session(s)", stack_name, loop.sessions_created)
    # Python's own handlers are back: a second Ctrl-C cuts this wait short (KeyboardInterrupt).
    report = await_restore(
        target.client("lambda"), seen.names, session_ids, timeout=restore_wait_seconds
    )
    listener.notice(report.line())
    return Detached(endpoints, received.number, report)
