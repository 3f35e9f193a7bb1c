"""Attaching the debugger to a stack: endpoint discovery, sessions and the WebSocket loop."""

from __future__ import annotations

from plldb.attach.connection import (
    ConnectionLoop,
    Listener,
    LoopSettings,
    open_websocket,
    websocket_url_with_session,
)
from plldb.attach.discovery import Endpoints, discover_endpoints
from plldb.attach.runner import attach
from plldb.attach.sessions import Session, create_session, session_from_response

__all__ = [
    "ConnectionLoop",
    "Endpoints",
    "Listener",
    "LoopSettings",
    "Session",
    "attach",
    "create_session",
    "discover_endpoints",
    "open_websocket",
    "session_from_response",
    "websocket_url_with_session",
]
