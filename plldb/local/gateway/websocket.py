"""WebSocket APIs of the API Gateway stand-in, with the @connections management API beside them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import http
import json
import logging
import re
import secrets
import string
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from plldb.local.gateway import events
from plldb.local.gateway.limits import (
    GOING_AWAY,
    GOING_AWAY_REASON,
    IDLE_TIMEOUT_SECONDS,
    MAX_CONNECTION_SECONDS,
    ConnectionLimits,
)
from plldb.local.gateway.sigv4 import SignedRequest
from plldb.local.httpserver import LoopbackHTTPServer
from plldb.local.service import Service
from plldb.local.specs import Invoker, WebSocketApi

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"
_POLL_INTERVAL = 0.05  # seconds; how long stop() waits for the HTTP server loop to notice
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's limit for a message and for post_to_connection
_CLOSE_TIMEOUT = 2.0  # seconds a closing handshake may take before the socket is dropped
_SEND_TIMEOUT = 10.0
_DISCONNECT_GRACE = 10.0  # seconds stop() gives the $disconnect functions it triggers
_ID_ALPHABET = string.ascii_letters + string.digits
_CONNECTIONS_PATH = re.compile(r"^/([^/]+)/([^/]+)/@connections/([^/]+)/?$")
_CLOSE_REASONS = {
    1000: "Connection Closed Normally",
    1001: "Going away",
    1005: "Client-side close frame status not set",
    1006: "Connection closed abnormally",
    1009: "Message too big",
}

T = TypeVar("T")


def new_id() -> str:
    """An id shaped like API Gateway's connection and request ids, such as 'Yq2b3cZ5IAMCJkQ='."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15)) + "="


@dataclass
class _Connection:
    """One accepted WebSocket client; touched only on the event loop except `last_active_ms`."""

    info: events.WebSocketConnection
    socket: ServerConnection
    authorizer: dict[str, Any] | None
    last_active_ms: int
    opened_at: float  # event loop clock, as is last_message_at
    last_message_at: float  # the client's last data frame: what API Gateway's idle timer sees
    closed: bool = False
    ended_by: tuple[int, str] | None = None  # the close the gateway sent at a limit


class WebSocketGateway(Service):
    """Serves WebSocket API stages at ws://127.0.0.1:PORT/{api_id}/{stage}.

    Handshakes go through the REQUEST authorizer and `$connect`, messages through the route
    selection expression, closes (clean or not) through `$disconnect`, once per connection.
    A second HTTP server answers the management API (`/{api_id}/{stage}/@connections/{id}`).
    Messages are handled concurrently, as in API Gateway: replies are not ordered.
    A connection ends (close code 1001) at its maximum age or after `idle_timeout_seconds`
    without a message from the client; `disconnect_delivery` is the chance that `$disconnect`
    is delivered (API Gateway's is best effort). `limits` may be replaced while serving.
    """

    def __init__(
        self,
        invoke: Invoker,
        region: str,
        account_id: str = DEFAULT_ACCOUNT,
        *,
        max_connection_seconds: float = MAX_CONNECTION_SECONDS,
        idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS,
        disconnect_delivery: float = 1.0,
    ) -> None:
        self._invoke = invoke
        self.region = region
        self.account_id = account_id
        self.limits = ConnectionLimits(
            max_connection_seconds, idle_timeout_seconds, disconnect_delivery
        )
        self._lock = threading.Lock()
        self._apis: dict[str, WebSocketApi] = {}
        self._connections: dict[str, _Connection] = {}  # the ones @connections can reach
        self._accepted: dict[ServerConnection, _Connection] = {}  # $connect said yes; loop only
        self._tasks: set[asyncio.Task[Any]] = set()  # loop only
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._server: Server | None = None
        self._management: _ManagementServer | None = None
        self._management_thread: threading.Thread | None = None
        self.port = 0
        self.management_port = 0

    # Lifecycle and configuration, called from any thread.

    def start(self) -> WebSocketGateway:
        if self._loop is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name="plldb-websocket-gateway", daemon=True
        )
        thread.start()
        self._loop, self._loop_thread = loop, thread
        self._server = asyncio.run_coroutine_threadsafe(self._open(), loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        management = _ManagementServer(self)
        self.management_port = management.server_address[1]
        self._management = management
        self._management_thread = threading.Thread(
            target=management.serve_forever,
            args=(_POLL_INTERVAL,),
            name="plldb-websocket-management",
            daemon=True,
        )
        self._management_thread.start()
        logger.info(
            "WebSocket gateway listening on ws://127.0.0.1:%d, management API on "
            "http://127.0.0.1:%d",
            self.port,
            self.management_port,
        )
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._loop_thread
        if loop is None:
            return
        if self._management is not None:
            self._management.shutdown()
            self._management.server_close()
        if self._management_thread is not None:
            self._management_thread.join(timeout=5)
        try:
            closing = asyncio.run_coroutine_threadsafe(self._close(), loop)
            closing.result(timeout=_DISCONNECT_GRACE + _CLOSE_TIMEOUT + 5)
        except concurrent.futures.TimeoutError:
            logger.warning("the WebSocket gateway did not close in time; stopping it anyway")
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
        self._loop = self._loop_thread = None
        self._server = self._management = self._management_thread = None

    def add_api(self, api: WebSocketApi) -> None:
        with self._lock:
            self._apis[api.api_id] = api

    def remove_api(self, api_id: str) -> None:
        """Forget an API and drop its connections; its `$disconnect` is gone with it."""
        with self._lock:
            self._apis.pop(api_id, None)
            dropped = [c for c in self._connections.values() if c.info.api_id == api_id]
            for connection in dropped:
                del self._connections[connection.info.connection_id]
        for connection in dropped:
            self._schedule_close(connection, 1001, "Going away")

    def url(self, api_id: str) -> str:
        api = self._api(api_id)
        if api is None:
            raise KeyError(api_id)
        return f"ws://127.0.0.1:{self.port}/{api.api_id}/{api.stage}"

    def management_endpoint(self, api_id: str) -> str:
        api = self._api(api_id)
        if api is None:
            raise KeyError(api_id)
        return f"http://127.0.0.1:{self.management_port}/{api.api_id}/{api.stage}"

    def _api(self, api_id: str, stage: str | None = None) -> WebSocketApi | None:
        with self._lock:
            api = self._apis.get(api_id)
        if api is None or (stage is not None and api.stage != stage):
            return None
        return api

    # The management API, called from its HTTP threads.

    def post_to_connection(self, api_id: str, stage: str, connection_id: str, data: bytes) -> int:
        """Send `data` to a client (text when it is UTF-8); the HTTP status API Gateway gives."""
        connection = self._live(api_id, stage, connection_id)
        if connection is None or self._loop is None:
            return 410
        if len(data) > MAX_MESSAGE_BYTES:
            return 413
        message: str | bytes
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError:
            message = data
        try:
            future = asyncio.run_coroutine_threadsafe(connection.socket.send(message), self._loop)
        except RuntimeError:  # the loop has stopped
            return 410
        try:
            future.result(timeout=_SEND_TIMEOUT)
        except ConnectionClosed:
            return 410
        except concurrent.futures.TimeoutError:
            future.cancel()
            return 429  # the client is not reading: API Gateway's LimitExceededException
        connection.last_active_ms = events.now_ms()
        return 200

    def get_connection(self, api_id: str, stage: str, connection_id: str) -> dict[str, Any] | None:
        connection = self._live(api_id, stage, connection_id)
        if connection is None:
            return None
        return {
            "connectedAt": _iso(connection.info.connected_at),
            "identity": {
                "sourceIp": connection.info.source_ip,
                "userAgent": connection.info.user_agent,
            },
            "lastActiveAt": _iso(connection.last_active_ms),
        }

    def delete_connection(self, api_id: str, stage: str, connection_id: str) -> bool:
        """Close a connection (its `$disconnect` follows); False when it is already gone."""
        with self._lock:
            connection = self._connections.get(connection_id)
            if connection is None or (connection.info.api_id, connection.info.stage) != (
                api_id,
                stage,
            ):
                return False
            del self._connections[connection_id]
        self._schedule_close(connection, 1000, "")
        return True

    def sever(self, connection_id: str) -> bool:
        """Drop a connection as a network failure would: no close frame (to test reconnects)."""
        with self._lock:
            connection = self._connections.get(connection_id)
        if connection is None or self._loop is None:
            return False
        self._loop.call_soon_threadsafe(connection.socket.transport.abort)
        return True

    def _live(self, api_id: str, stage: str, connection_id: str) -> _Connection | None:
        with self._lock:
            connection = self._connections.get(connection_id)
        if connection is None or (connection.info.api_id, connection.info.stage) != (
            api_id,
            stage,
        ):
            return None
        return connection

    def _schedule_close(self, connection: _Connection, code: int, reason: str) -> None:
        # Not waited for: a client that does not answer the close frame takes _CLOSE_TIMEOUT.
        if self._loop is not None:
            # A stopped loop has closed every connection already.
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(connection.socket.close(code, reason), self._loop)

    # The event loop side.

    async def _open(self) -> Server:
        return await serve(
            self._serve_connection,
            "127.0.0.1",
            0,
            process_request=self._handshake,
            compression=None,
            ping_interval=None,  # API Gateway sends no pings; a paused debugger client must live
            close_timeout=_CLOSE_TIMEOUT,
            max_size=MAX_MESSAGE_BYTES,
            logger=logger,
        )

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        watchers = [task for task in self._tasks if task.get_name().startswith("disconnect")]
        if watchers:
            _, late = await asyncio.wait(watchers, timeout=_DISCONNECT_GRACE)
            if late:
                logger.warning("%d $disconnect functions still running at stop", len(late))
        leftovers = list(self._tasks)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", task.get_name(), exc_info=task.exception())

    async def _handshake(self, socket: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        segments = [segment for segment in parts.path.split("/") if segment]
        api = self._api(*segments) if len(segments) == 2 else None
        if api is None:
            return _refusal(403, "ForbiddenException", "Forbidden")
        epoch = events.now_ms()
        handshake = events.HttpRequest(
            headers=tuple(request.headers.raw_items()),
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        )
        info = events.WebSocketConnection(
            api_id=api.api_id,
            stage=api.stage,
            connection_id=new_id(),
            connected_at=epoch,
            domain_name=f"127.0.0.1:{self.port}",
            source_ip=str(socket.remote_address[0]),
            user_agent=handshake.header("User-Agent") or "",
        )
        route = api.routes.get("$connect")
        authorizer: dict[str, Any] | None = None
        if route is not None and route.authorization.upper() == "CUSTOM" and api.authorizer:
            authorized = await self._authorize(api, info, handshake)
            if isinstance(authorized, Response):
                return authorized
            authorizer = authorized
        if route is not None:
            event = events.connect_event(info, handshake, new_id(), events.now_ms(), authorizer)
            outcome = await self._call(route.function, event)
            if not outcome.ok:
                logger.warning("$connect of %s failed: %s", api.api_id, outcome.error)
                return _refusal(500, "InternalServerErrorException", events.INTERNAL_SERVER_ERROR)
            status = events.connect_status(outcome.value)
            if not 200 <= status < 300:
                logger.info("$connect of %s refused the connection (%d)", api.api_id, status)
                status = status if 400 <= status <= 599 else 500
                return _refusal(status, "", http.HTTPStatus(status).phrase)
        opened = asyncio.get_running_loop().time()
        connection = _Connection(info, socket, authorizer, epoch, opened, opened)
        self._accepted[socket] = connection
        self._spawn(self._watch(connection), name=f"disconnect {info.connection_id}")
        return None

    async def _authorize(
        self, api: WebSocketApi, info: events.WebSocketConnection, handshake: events.HttpRequest
    ) -> dict[str, Any] | Response:
        """The authorizer context for later events, or the response that refuses the handshake."""
        assert api.authorizer is not None
        missing = events.missing_identity_sources(api.authorizer.identity_source, handshake)
        if missing:
            logger.info("handshake to %s lacks %s", api.api_id, ", ".join(missing))
            return _refusal(401, "UnauthorizedException", "Unauthorized")
        arn = events.method_arn(self.region, self.account_id, api.api_id, api.stage, "$connect")
        started = events.now_ms()
        event = events.authorizer_request_event(info, handshake, arn, new_id(), started)
        outcome = await self._call(api.authorizer.function, event)
        if not outcome.ok:
            logger.warning("authorizer of %s failed: %s", api.api_id, outcome.error)
            return _refusal(500, "AuthorizerConfigurationException", events.INTERNAL_SERVER_ERROR)
        try:
            decision = events.evaluate_authorizer_result(outcome.value, arn)
        except ValueError as error:
            logger.warning("authorizer of %s answered badly: %s", api.api_id, error)
            return _refusal(500, "AuthorizerConfigurationException", events.INTERNAL_SERVER_ERROR)
        if not decision.allowed:
            return _refusal(403, "AccessDeniedException", "Forbidden")
        return decision.request_context(events.now_ms() - started)

    async def _serve_connection(self, socket: ServerConnection) -> None:
        connection = self._accepted.pop(socket, None)
        if connection is None or connection.closed:
            return
        with self._lock:
            self._connections[connection.info.connection_id] = connection
        loop = asyncio.get_running_loop()
        limits = loop.create_task(self._enforce_limits(connection), name="limits")
        try:
            async for message in socket:
                connection.last_active_ms = events.now_ms()
                connection.last_message_at = loop.time()
                self._spawn(self._route(connection, message), name="message")
        except ConnectionClosed:
            pass  # a dropped client: _watch announces it
        finally:
            limits.cancel()
            await asyncio.gather(limits, return_exceptions=True)

    async def _enforce_limits(self, connection: _Connection) -> None:
        """Close the connection, as API Gateway does, once its age or idleness hits a limit."""
        loop = asyncio.get_running_loop()
        while True:
            # Read on every turn: a message moves the idle deadline, and limits may change.
            due, limit = self.limits.deadline(connection.opened_at, connection.last_message_at)
            delay = due - loop.time()
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        connection_id = connection.info.connection_id
        logger.info("closing connection %s: %s reached", connection_id, limit)
        connection.ended_by = (GOING_AWAY, GOING_AWAY_REASON)
        with self._lock:
            if self._connections.get(connection_id) is connection:
                del self._connections[connection_id]  # @connections answers 410 from now on
        # Its own task: the closing handshake must outlive this one, cancelled once closed.
        self._spawn(connection.socket.close(GOING_AWAY, GOING_AWAY_REASON), name="close")

    async def _watch(self, connection: _Connection) -> None:
        """Wait for the connection to end, however it ends, and fire `$disconnect` once."""
        socket = connection.socket
        await socket.wait_closed()
        connection.closed = True
        self._accepted.pop(socket, None)
        with self._lock:
            if self._connections.get(connection.info.connection_id) is connection:
                del self._connections[connection.info.connection_id]
        api = self._api(connection.info.api_id, connection.info.stage)
        route = api.routes.get("$disconnect") if api is not None else None
        if route is None:
            return
        if not self.limits.delivers_disconnect():
            logger.info("$disconnect of %s not delivered (lossy)", connection.info.connection_id)
            return
        if connection.ended_by is not None:
            code, reason = connection.ended_by
        else:
            code = socket.close_code or 1006
            reason = socket.close_reason or _CLOSE_REASONS.get(code, "")
        event = events.disconnect_event(
            connection.info, code, reason, new_id(), events.now_ms(), connection.authorizer
        )
        outcome = await self._call(route.function, event)
        if not outcome.ok:
            logger.warning("$disconnect of %s failed: %s", connection.info.api_id, outcome.error)

    async def _route(self, connection: _Connection, data: str | bytes) -> None:
        info = connection.info
        api = self._api(info.api_id, info.stage)
        if api is None:
            return
        request_id = new_id()
        route_key = events.select_route(api.route_selection_expression, data, api.routes)
        if route_key is None:
            await self._send(
                connection, events.error_frame("Forbidden", info.connection_id, request_id)
            )
            return
        route = api.routes[route_key]
        event = events.message_event(
            info, route_key, data, request_id, new_id(), events.now_ms(), connection.authorizer
        )
        outcome = await self._call(route.function, event)
        if not outcome.ok:
            logger.warning("%s of %s failed: %s", route_key, info.api_id, outcome.error)
            frame = events.error_frame(events.INTERNAL_SERVER_ERROR, info.connection_id, request_id)
            await self._send(connection, frame)
            return
        if route.two_way:
            reply = events.route_reply(outcome.value)
            if reply is not None:
                await self._send(connection, reply)

    async def _send(self, connection: _Connection, message: str | bytes) -> None:
        try:
            await connection.socket.send(message)
        except ConnectionClosed:
            return
        connection.last_active_ms = events.now_ms()

    async def _call(self, function: str, event: dict[str, Any]) -> events.Outcome:
        payload = json.dumps(event).encode()
        try:
            result = await _in_thread(self._invoke, function, payload)
        except Exception as error:
            logger.exception("invoking %s failed", function)
            return events.Outcome(ok=False, error=f"{type(error).__name__}: {error}")
        return events.read_invoke_result(result)


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a daemon thread, so a function that never returns blocks no exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        result, error = None, None
        try:
            result = function(*args)
        except Exception as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the gateway stopped while the function ran
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="plldb-websocket-invoke", daemon=True).start()
    return await future


def _refusal(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"message": message}).encode()
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
    )
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _iso(epoch_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


class _ManagementServer(LoopbackHTTPServer):
    def __init__(self, gateway: WebSocketGateway) -> None:
        super().__init__(("127.0.0.1", 0), _ManagementHandler)
        self.gateway = gateway


class _ManagementHandler(BaseHTTPRequestHandler):
    """`POST`, `GET` and `DELETE` on /{api_id}/{stage}/@connections/{connectionId}."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _ManagementServer

    def do_POST(self) -> None:
        target = self._target()
        if target is None:
            return
        data = self._body
        status = self.server.gateway.post_to_connection(*target, data)
        if status == 200:
            self._answer(200, b"")
        elif status == 413:
            self._error(413, "PayloadTooLargeException", "Message too long")
        elif status == 429:
            self._error(429, "LimitExceededException", "Limit exceeded")
        else:
            self._gone()

    def do_GET(self) -> None:
        target = self._target()
        if target is None:
            return
        description = self.server.gateway.get_connection(*target)
        if description is None:
            self._gone()
        else:
            self._answer(200, json.dumps(description).encode())

    def do_DELETE(self) -> None:
        target = self._target()
        if target is None:
            return
        if self.server.gateway.delete_connection(*target):
            self._answer(204, b"")
        else:
            self._gone()

    def _target(self) -> tuple[str, str, str] | None:
        match = _CONNECTIONS_PATH.match(urlsplit(self.path).path)
        if match is None or self.server.gateway._api(match[1], match[2]) is None:
            self._discard_body()
            self._error(403, "ForbiddenException", "Forbidden")
            return None
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length > 0 else b""
        # Under IAM enforcement: execute-api:ManageConnections on the connection's ARN,
        # arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/VERB/@connections/ID (iam/gateway.py).
        check = getattr(self.server.gateway, "management_check", None)
        if check is not None:
            url = urlsplit(self.path)
            signed = SignedRequest(self.command, url.path, url.query, tuple(self.headers.items()),
                                   self._body)  # fmt: skip
            verdict = check(signed, match[1], match[2], self.command, unquote(match[3]))
            if not verdict.ok:
                logger.info("%s %s refused: %s", self.command, self.path, verdict.message)
                self._error(403, verdict.error_type or "", verdict.message)
                return None
        return match[1], match[2], unquote(match[3])

    def _discard_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

    def _gone(self) -> None:
        self._error(410, "GoneException", None)

    def _error(self, status: int, error_type: str, message: str | None) -> None:
        self._answer(status, json.dumps({"message": message}).encode(), error_type)

    def _answer(self, status: int, body: bytes, error_type: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)
