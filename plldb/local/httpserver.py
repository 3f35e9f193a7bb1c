"""The threaded loopback HTTP server every part of the offline cloud serves HTTP with."""

from __future__ import annotations

import logging
import sys
from http.server import ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """Daemon request threads, and a client hanging up is not worth a traceback on stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            log.debug("client %s hung up: %s", client_address, error)
            return
        log.exception("error while serving %s", client_address)
