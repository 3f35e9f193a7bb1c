"""`plldb attach` from start to end: discover the APIs, create a session, run the loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from plldb.attach.connection import ConnectionLoop, Listener, LoopSettings
from plldb.attach.discovery import Endpoints, discover_endpoints
from plldb.attach.dispatch import RelayListener
from plldb.attach.invoker import LocalInvoker
from plldb.attach.local_source import SourceMap, find_template, stack_functions
from plldb.attach.sessions import Session, create_session
from plldb.attach.signals import stop_on_signals
from plldb.aws import AwsTarget

log = logging.getLogger(__name__)


def local_sources(
    target: AwsTarget, stack_name: str, template: str | None, cwd: Path | None = None
) -> SourceMap:
    """Where the stack's functions live locally; the stack is listed at the first invocation."""
    path = find_template(template, cwd or Path.cwd())
    cloudformation = target.client("cloudformation")
    return SourceMap(path, lambda: stack_functions(cloudformation, stack_name))


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
    management_api_url: str | None = None,
    websocket_url: str | None = None,
    settings: LoopSettings | None = None,
    stop: threading.Event | None = None,
    environ: Mapping[str, str] | None = None,
) -> Endpoints:
    """Attach to `stack_name` until SIGINT, SIGTERM or `stop`; returns the endpoints it used.

    Relayed invocations run from the local source that `template` (or the template in `cwd`)
    points at, with the developer's credentials, or the function role's with `function_role`.
    Everything that can be checked locally is checked before the session is created.
    """
    endpoints = discover_endpoints(target, management_api_url, websocket_url, environ)
    sources = local_sources(target, stack_name, template, cwd)

    def new_session(take_over: bool) -> Session:
        return create_session(
            target,
            endpoints.management_api_url,
            stack_name,
            force=take_over,
            functions=functions,
            function_role=function_role,
        )

    stop = stop or threading.Event()
    with LocalInvoker(sources) as invoker:
        relay = RelayListener(
            listener, invoker, lambda text: loop.send(text), function_role=function_role
        )
        loop = ConnectionLoop(
            endpoints.websocket_url, new_session, relay, stop, settings, stack_name=stack_name
        )
        with stop_on_signals(stop):
            loop.run(force=force)
    log.debug("detached from stack %s after %d session(s)", stack_name, loop.sessions_created)
    return endpoints
