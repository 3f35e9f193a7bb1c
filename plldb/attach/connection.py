"""The WebSocket side of attach: the connection, the receive loop, keepalives, reconnects."""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from plldb import __version__, protocol
from plldb.attach.errors import (
    AttachError,
    ConnectionLostError,
    SessionClosedError,
    TransientAttachError,
    WebSocketRefusedError,
    WebSocketUnreachableError,
)
from plldb.attach.sessions import Session, short_id

log = logging.getLogger(__name__)

SESSION_QUERY_PARAMETER = "sessionId"
# The backend's last word to a debugger another `attach --force` replaced.
SESSION_CLOSED = "session_closed"
# Creates a session; the argument is `force` (take over a session that still looks active).
SessionFactory = Callable[[bool], Session]
# Tuning knobs (docs/protocol.md): the keepalive period, and the connection age that renews.
KEEPALIVE_ENV = "PLLDB_KEEPALIVE_SECONDS"
RENEW_AFTER_ENV = "PLLDB_RENEW_AFTER_SECONDS"
_KEEPALIVE = protocol.encode(protocol.keepalive())
_NORMAL_CLOSURE = 1000
_MIN_WAIT = 0.01


@dataclass(frozen=True)
class LoopSettings:
    """Timings of the loop; the defaults fit API Gateway's WebSocket limits."""

    # API Gateway drops a connection idle for 10 minutes.
    keepalive_seconds: float = 300.0
    # API Gateway ends every connection after 2 hours (7200 s); renew a little before.
    max_connection_seconds: float = 7000.0
    max_reconnect_attempts: int = 5
    first_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    # How long one receive waits: the longest delay before a stop request is noticed.
    poll_seconds: float = 0.25
    open_timeout_seconds: float = 10.0
    close_timeout_seconds: float = 3.0


def loop_settings(environ: Mapping[str, str], base: LoopSettings | None = None) -> LoopSettings:
    """`base` (the defaults) with the keepalive and renewal the user set in the environment."""
    settings = base or LoopSettings()
    changes = {}
    for variable, field in (
        (KEEPALIVE_ENV, "keepalive_seconds"),
        (RENEW_AFTER_ENV, "max_connection_seconds"),
    ):
        text = environ.get(variable, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise AttachError(f"{variable} must be a positive number of seconds, not {text!r}")
        changes[field] = value
    return dataclasses.replace(settings, **changes)


def heartbeat_seconds(settings: LoopSettings, session: Session) -> float:
    """The keepalive period: each keepalive is also the heartbeat that extends the session's
    lease, so three fit in one lease and a single lost one does not end the session."""
    if session.lease_seconds:
        return min(settings.keepalive_seconds, session.lease_seconds / 3)
    return settings.keepalive_seconds


class Listener:
    """What the loop reports. This base class only logs; the command layer prints."""

    def message(self, message: dict[str, Any]) -> None:
        """A valid protocol message (plldb.protocol.parse accepted it)."""
        log.info("message %s", message.get("type"))

    def malformed(self, raw: str | bytes, problem: str) -> None:
        """A message that failed validation; the loop skips it and carries on."""
        log.warning("ignored a malformed message: %s", problem)

    def notice(self, text: str) -> None:
        """Connection news: connected, lost, reconnecting, renewing, disconnected."""
        log.info("%s", text)


class _Outcome(enum.Enum):
    STOPPED = "stopped"
    LOST = "lost"
    RENEW = "renew"
    ENDED = "ended"  # the backend closed the session: reconnecting would take it back


def websocket_url_with_session(websocket_url: str, session_id: str) -> str:
    """The URL to open: the API's URL with sessionId in its query (existing parameters kept)."""
    parts = urlsplit(websocket_url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key != SESSION_QUERY_PARAMETER
    ]
    query.append((SESSION_QUERY_PARAMETER, session_id))
    # A WebSocket URL has no fragment (RFC 6455 section 3).
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def open_websocket(websocket_url: str, session: Session, timeout: float = 10.0) -> Any:
    """Open the session's connection (a websocket.WebSocket); failures become AttachErrors."""
    import websocket

    url = websocket_url_with_session(websocket_url, session.session_id)
    try:
        return websocket.create_connection(
            url,
            timeout=timeout,
            # Text frames are decoded and checked by the loop, so a bad one is skipped, not fatal.
            skip_utf8_validation=True,
            header=[f"User-Agent: plldb/{__version__}"],
        )
    except websocket.WebSocketBadStatusException as error:
        status = error.status_code
        if status in (401, 403):
            raise WebSocketRefusedError(
                f"The WebSocket API refused session {session.short_id} (HTTP {status}): "
                "it expired, was already used, or another debugger holds the stack "
                "(--force takes over)",
                status,
            ) from None
        if status == 429 or status >= 500:
            raise WebSocketUnreachableError(
                f"The WebSocket API at {websocket_url} failed the handshake (HTTP {status})"
            ) from None
        raise AttachError(
            f"The WebSocket API at {websocket_url} answered the handshake with HTTP {status}: "
            "check the WebSocket URL, or run `plldb bootstrap setup` to update the plldb stack"
        ) from None
    except (websocket.WebSocketException, OSError) as error:
        reason = _scrub(str(error), session.session_id) or type(error).__name__
        raise WebSocketUnreachableError(
            f"Cannot reach the WebSocket API at {websocket_url}: {reason}"
        ) from None


class ConnectionLoop:
    """Keeps one attached connection alive until `stop` is set, reconnecting as needed."""

    def __init__(
        self,
        websocket_url: str,
        new_session: SessionFactory,
        listener: Listener,
        stop: threading.Event | None = None,
        settings: LoopSettings | None = None,
        stack_name: str = "",
        clock: Callable[[], float] = time.monotonic,
        connect: Callable[[str, Session, float], Any] = open_websocket,
    ) -> None:
        self.websocket_url = websocket_url
        self.new_session = new_session
        self.listener = listener
        self.stop = stop or threading.Event()
        self.settings = settings or LoopSettings()
        self.stack_name = stack_name
        self.clock = clock
        self.connect = connect
        self.sessions_created = 0
        self._socket: Any = None
        self._send_lock = threading.Lock()
        self._keepalive_seconds = self.settings.keepalive_seconds

    def send(self, text: str) -> bool:
        """Send one text message on the current connection, from any thread; False if none.

        A message sent while the connection is being replaced is lost: the relay runtime
        that waits for it notices its session closed and runs the function's own handler.
        """
        import websocket

        with self._send_lock:
            ws = self._socket
            if ws is None:
                return False
            try:
                ws.send(text)
            except (websocket.WebSocketException, OSError) as error:
                log.info("sending a message failed: %s", _describe(error))
                return False
        return True

    def run(self, force: bool = False) -> None:
        """Connect, then receive until stopped; returns after closing cleanly.

        The first session and connection fail fast with their own error. Later connections
        (after a drop or for renewal) retry with backoff and end in ConnectionLostError. A
        `session_closed` message from the backend (another attach took over) ends the loop
        with SessionClosedError instead of reconnecting, which would take the stack back.
        """
        try:
            session = self._create_session(force)
            if self.stop.is_set():
                return
            self._socket = self.connect(
                self.websocket_url, session, self.settings.open_timeout_seconds
            )
            self._announce("connected", session)
            while True:
                outcome, reason = self._pump(self._socket)
                if outcome is _Outcome.STOPPED:
                    self._close(self.settings.close_timeout_seconds)
                    self.listener.notice("disconnected")
                    return
                if outcome is _Outcome.ENDED:
                    self._close(self.settings.close_timeout_seconds)
                    raise SessionClosedError(f"The backend ended this debugger's session: {reason}")
                self._leave(outcome, reason)
                if not self._reconnect():
                    self.listener.notice("disconnected")
                    return
        finally:
            # Reached with an open socket only on an unexpected error or a second Ctrl-C.
            self._close(0)

    def _leave(self, outcome: _Outcome, reason: str) -> None:
        """Close the current connection before a new one replaces it."""
        if outcome is _Outcome.RENEW:
            self.listener.notice("renewing the connection before API Gateway's 2-hour limit")
            self._close(self.settings.close_timeout_seconds)
            return
        self.listener.notice(f"connection lost ({reason}), reconnecting with a new session")
        self._close(0)

    def _create_session(self, force: bool) -> Session:
        session = self.new_session(force)
        self.sessions_created += 1
        self._keepalive_seconds = heartbeat_seconds(self.settings, session)
        return session

    def _announce(self, verb: str, session: Session) -> None:
        stack = f" for stack {self.stack_name}" if self.stack_name else ""
        self.listener.notice(f"{verb} to {self.websocket_url}{stack} (session {session.short_id})")

    def _reconnect(self) -> bool:
        """Open a connection with a fresh session; False when stopped while trying."""
        settings = self.settings
        delay = settings.first_backoff_seconds
        last: AttachError | None = None
        attempts = max(1, settings.max_reconnect_attempts)
        for attempt in range(1, attempts + 1):
            if self.stop.is_set():
                return False
            try:
                # The old session may still look ACTIVE for a moment: take it over.
                session = self._create_session(True)
                if self.stop.is_set():
                    return False
                self._socket = self.connect(
                    self.websocket_url, session, settings.open_timeout_seconds
                )
            except (TransientAttachError, WebSocketRefusedError) as error:
                last = error
                if attempt == attempts:
                    break
                self.listener.notice(
                    f"reconnect attempt {attempt} of {attempts} failed ({error}); "
                    f"retrying in {delay:g} s"
                )
                if self.stop.wait(delay):
                    return False
                delay = min(delay * 2, settings.max_backoff_seconds)
                continue
            self._announce("reconnected", session)
            return True
        raise ConnectionLostError(
            "Lost the connection to the WebSocket API and could not reconnect "
            f"({attempts} attempts): {last}"
        ) from last

    def _pump(self, ws: Any) -> tuple[_Outcome, str]:
        """Receive and deliver messages, sending keepalives, until a reason to leave."""
        import websocket

        settings = self.settings
        opened = self.clock()
        renew_at = opened + settings.max_connection_seconds
        next_keepalive = opened + self._keepalive_seconds
        while True:
            if self.stop.is_set():
                return _Outcome.STOPPED, "stop requested"
            now = self.clock()
            if now >= renew_at:
                return _Outcome.RENEW, "connection limit"
            if now >= next_keepalive:
                try:
                    with self._send_lock:
                        ws.send(_KEEPALIVE)
                except (websocket.WebSocketException, OSError) as error:
                    return _Outcome.LOST, f"sending a keepalive failed: {_describe(error)}"
                log.debug("keepalive sent")
                next_keepalive = now + self._keepalive_seconds
            wait = min(settings.poll_seconds, next_keepalive - now, renew_at - now)
            ws.settimeout(max(_MIN_WAIT, wait))
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError) as error:
                return _Outcome.LOST, _describe(error)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                # websocket-client has answered the close frame; the server now waits for the
                # TCP connection to end.
                ws.shutdown()
                return _Outcome.LOST, f"closed by the server: {_close_status(data)}"
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                ended = self._deliver(data)
                if ended is not None:
                    return _Outcome.ENDED, ended

    def _deliver(self, data: str | bytes) -> str | None:
        """Hand a message to the listener; returns the reason when the backend ended the session."""
        try:
            message = protocol.parse(data)
        except protocol.ProtocolError as error:
            self.listener.malformed(data, str(error))
            return None
        if message["type"] == SESSION_CLOSED:
            return message["message"]
        self.listener.message(message)
        return None

    def _close(self, timeout: float) -> None:
        """Send a close frame, wait up to `timeout` for the server's, then close the socket."""
        ws, self._socket = self._socket, None
        if ws is None:
            return
        try:
            ws.close(status=_NORMAL_CLOSURE, timeout=timeout)
        except Exception:  # closing is best effort: the socket is dropped below either way
            log.debug("closing the WebSocket failed", exc_info=True)
        finally:
            ws.shutdown()


def _close_status(data: bytes) -> str:
    if len(data) < 2:
        return "no status"
    (code,) = struct.unpack("!H", data[:2])
    reason = data[2:].decode("utf-8", "replace")
    return f"{code} {reason}".strip()


def _describe(error: BaseException) -> str:
    text = str(error)
    return text if text else type(error).__name__


def _scrub(text: str, session_id: str) -> str:
    """Keep a full session id out of messages built from library errors."""
    return text.replace(session_id, short_id(session_id)) if session_id else text
