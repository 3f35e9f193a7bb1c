"""`plldb attach` from start to end: discover the APIs, create a session, run the loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

from plldb.attach.connection import ConnectionLoop, Listener, LoopSettings
from plldb.attach.discovery import Endpoints, discover_endpoints
from plldb.attach.sessions import Session, create_session
from plldb.attach.signals import stop_on_signals
from plldb.aws import AwsTarget

log = logging.getLogger(__name__)


def attach(
    target: AwsTarget,
    stack_name: str,
    listener: Listener,
    *,
    force: bool = False,
    functions: Sequence[str] = (),
    management_api_url: str | None = None,
    websocket_url: str | None = None,
    settings: LoopSettings | None = None,
    stop: threading.Event | None = None,
    environ: Mapping[str, str] | None = None,
) -> Endpoints:
    """Attach to `stack_name` until SIGINT, SIGTERM or `stop`; returns the endpoints it used."""
    endpoints = discover_endpoints(target, management_api_url, websocket_url, environ)

    def new_session(take_over: bool) -> Session:
        return create_session(
            target,
            endpoints.management_api_url,
            stack_name,
            force=take_over,
            functions=functions,
        )

    stop = stop or threading.Event()
    loop = ConnectionLoop(
        endpoints.websocket_url, new_session, listener, stop, settings, stack_name=stack_name
    )
    with stop_on_signals(stop):
        loop.run(force=force)
    log.debug("detached from stack %s after %d session(s)", stack_name, loop.sessions_created)
    return endpoints
