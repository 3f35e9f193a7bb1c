"""The attach loop against a real WebSocket server on 127.0.0.1 that plays API Gateway's part."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.sync.server import serve

from plldb import protocol
from plldb.attach.connection import ConnectionLoop, Listener, LoopSettings
from plldb.attach.errors import (
    ConnectionLostError,
    SessionClosedError,
    SessionRequestError,
    WebSocketRefusedError,
    WebSocketUnreachableError,
)
from plldb.attach.sessions import Session

WAIT = 5.0  # seconds any single expectation may take before the test fails
FAST = LoopSettings(
    keepalive_seconds=60,
    max_connection_seconds=600,
    max_reconnect_attempts=3,
    first_backoff_seconds=0.05,
    max_backoff_seconds=0.1,
    poll_seconds=0.05,
    open_timeout_seconds=2,
    close_timeout_seconds=1,
)


def settings(**changes) -> LoopSettings:
    return LoopSettings(**{**FAST.__dict__, **changes})


def eventually(check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check.__doc__ or check}")
        time.sleep(0.01)


class Link:
    """One connection the gateway accepted."""

    def __init__(self, session_id: str, connection) -> None:
        self.session_id = session_id
        self.connection = connection
        self.received: list[tuple[float, str]] = []
        self.ended = threading.Event()
        self.close_code: int | None = None

    def push(self, data: str | bytes) -> None:
        self.connection.send(data)

    def drop(self) -> None:
        """End the TCP connection with no close frame, as a network failure would."""
        self.connection.socket.shutdown(socket.SHUT_RDWR)

    def keepalives(self) -> list[float]:
        return [at for at, text in self.received if text == protocol.encode(protocol.keepalive())]


class FakeGateway:
    """Accepts a handshake only for a session it was told about, and only once."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self.refused: list[str] = []
        self.links: list[Link] = []
        self._lock = threading.Lock()
        self._server = serve(
            self._handle, "127.0.0.1", 0, process_request=self._check, close_timeout=1
        )
        self.port = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/api1/prod"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _check(self, connection, request):
        session_id = parse_qs(urlsplit(request.path).query).get("sessionId", [""])[0]
        with self._lock:
            if session_id not in self.valid:
                self.refused.append(session_id)
                return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
            self.valid.discard(session_id)  # a session id works once
        return None

    def _handle(self, connection) -> None:
        session_id = parse_qs(urlsplit(connection.request.path).query)["sessionId"][0]
        link = Link(session_id, connection)
        with self._lock:
            self.links.append(link)
        try:
            for message in connection:
                link.received.append((time.monotonic(), message))
        except Exception:  # noqa: S110 - a dropped connection ends the iteration either way
            pass
        link.close_code = connection.close_code
        link.ended.set()

    def live(self) -> list[Link]:
        return [link for link in self.links if not link.ended.is_set()]

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(WAIT)


class Sessions:
    """The session creator the loop calls: records `force` and registers ids at the gateway."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.forces: list[bool] = []
        self.counter = itertools.count(1)
        self.accept = True
        self.error: Exception | None = None

    def __call__(self, force: bool) -> Session:
        self.forces.append(force)
        if self.error is not None:
            raise self.error
        session_id = f"sess{next(self.counter):04d}-0000-4000-8000-secretsecret"
        if self.accept:
            self.gateway.valid.add(session_id)
        return Session(session_id, expires_at=None)


class Recorder(Listener):
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.malformed_messages: list[tuple[str | bytes, str]] = []
        self.notices: list[str] = []

    def message(self, message: dict) -> None:
        self.messages.append(message)

    def malformed(self, raw: str | bytes, problem: str) -> None:
        self.malformed_messages.append((raw, problem))

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def count(self, word: str) -> int:
        return sum(word in notice for notice in self.notices)


class Running:
    """A loop running in a thread, so the test can play the server meanwhile."""

    def __init__(self, loop: ConnectionLoop, force: bool = False) -> None:
        self.loop = loop
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(force,), daemon=True)
        self.thread.start()

    def _run(self, force: bool) -> None:
        try:
            self.loop.run(force=force)
        except BaseException as error:  # handed to the test thread
            self.error = error

    def finish(self, timeout: float = WAIT) -> BaseException | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the loop did not end"
        return self.error

    def stop(self) -> None:
        self.loop.stop.set()
        error = self.finish()
        if error is not None:
            raise error


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    server = FakeGateway()
    yield server
    server.stop()


@pytest.fixture
def sessions(gateway: FakeGateway) -> Sessions:
    return Sessions(gateway)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def start(gateway, sessions, recorder) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def starter(force: bool = False, **changes) -> Running:
        loop = ConnectionLoop(
            gateway.url,
            sessions,
            recorder,
            threading.Event(),
            settings(**changes),
            stack_name="orders",
        )
        running = Running(loop, force)
        started.append(running)
        return running

    yield starter
    for running in started:
        running.loop.stop.set()
        with contextlib.suppress(AssertionError):
            running.finish()


def connected(gateway: FakeGateway, recorder: Recorder, count: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        """the count-th connection to be open on both ends, and the only one"""
        return (
            len(gateway.links) >= count
            and len(gateway.live()) == 1
            and recorder.count("connected to ") >= count
        )

    return check


def test_messages_reach_the_listener_and_malformed_ones_do_not_stop_the_loop(
    gateway, recorder, start
):
    running = start()
    eventually(connected(gateway, recorder))
    assert recorder.count("connected to ") == 1
    assert "for stack orders (session sess0001…)" in recorder.notices[0]
    assert "secretsecret" not in " ".join(recorder.notices)
    link = gateway.links[0]
    link.push(protocol.encode(protocol.info("Attached to orders")))
    link.push(protocol.encode(protocol.error("Cannot instrument orders-fn")))
    link.push("{not json")
    link.push('{"type": "surprise"}')
    link.push(b"\xff\xfe binary junk")
    link.push(protocol.encode(protocol.info("still here")))
    eventually(lambda: len(recorder.messages) == 3)
    assert recorder.messages == [
        {"type": "info", "message": "Attached to orders"},
        {"type": "error", "message": "Cannot instrument orders-fn"},
        {"type": "info", "message": "still here"},
    ]
    problems = [problem for _, problem in recorder.malformed_messages]
    assert len(problems) == 3
    assert "not JSON" in problems[0]
    assert "unknown message type 'surprise'" in problems[1]
    running.stop()


def test_keepalives_are_sent_at_the_configured_interval(gateway, recorder, start):
    running = start(keepalive_seconds=0.2)
    eventually(connected(gateway, recorder))
    link = gateway.links[0]
    eventually(lambda: len(link.keepalives()) >= 3)
    times = link.keepalives()
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(0.15 <= gap <= 0.6 for gap in gaps), gaps
    running.stop()


def test_no_keepalive_before_the_interval(gateway, recorder, start):
    running = start(keepalive_seconds=30)
    eventually(connected(gateway, recorder))
    time.sleep(0.3)
    assert gateway.links[0].keepalives() == []
    running.stop()


def test_stop_closes_cleanly_and_returns(gateway, sessions, recorder, start):
    running = start()
    eventually(connected(gateway, recorder))
    began = time.monotonic()
    running.stop()
    assert time.monotonic() - began < 1.5
    link = gateway.links[0]
    assert link.ended.wait(WAIT)
    assert link.close_code == 1000
    assert recorder.notices[-1] == "disconnected"
    assert sessions.forces == [False]


def test_force_is_passed_to_the_first_session(gateway, sessions, recorder, start):
    running = start(force=True)
    eventually(connected(gateway, recorder))
    running.stop()
    assert sessions.forces == [True]


@pytest.mark.parametrize("how", ["drop", "close"])
def test_a_lost_connection_is_replaced_using_a_new_session(how, gateway, sessions, recorder, start):
    running = start()
    eventually(connected(gateway, recorder))
    first = gateway.links[0]
    if how == "drop":
        first.drop()
    else:
        first.connection.close(1001, "Going away")
    eventually(connected(gateway, recorder, count=2))
    assert sessions.forces == [False, True]
    second = gateway.links[1]
    assert second.session_id != first.session_id
    assert recorder.count("connection lost") == 1
    assert "reconnecting with a new session" in recorder.notices[1]
    assert recorder.notices[2].startswith("reconnected to ")
    second.push(protocol.encode(protocol.info("after the reconnect")))
    eventually(lambda: recorder.messages == [{"type": "info", "message": "after the reconnect"}])
    running.stop()
    assert second.ended.wait(WAIT)
    assert second.close_code == 1000


def test_a_session_closed_by_the_backend_ends_the_loop_without_reconnecting(
    gateway, sessions, recorder, start
):
    running = start()
    eventually(connected(gateway, recorder))
    link = gateway.links[0]
    reason = "another plldb attach took over this stack (--force)"
    link.push(protocol.encode({"type": "session_closed", "message": reason}))
    error = running.finish()
    assert isinstance(error, SessionClosedError)
    assert str(error) == f"The backend ended this debugger's session: {reason}"
    assert sessions.forces == [False]
    assert link.ended.wait(WAIT)
    assert link.close_code == 1000
    assert recorder.messages == []


def test_a_refused_handshake_is_a_clear_error(gateway, sessions, start):
    sessions.accept = False
    error = start().finish()
    assert isinstance(error, WebSocketRefusedError)
    assert error.status == 403
    assert str(error) == (
        "The WebSocket API refused session sess0001… (HTTP 403): it expired, was already used, "
        "or another debugger holds the stack (--force takes over)"
    )
    assert gateway.links == []
    assert sessions.forces == [False]  # not retried: the first connection fails fast


def test_the_connection_is_renewed_before_the_limit(gateway, sessions, recorder, start):
    running = start(max_connection_seconds=0.4)
    eventually(connected(gateway, recorder))
    first = gateway.links[0]
    eventually(connected(gateway, recorder, count=2))
    running.loop.stop.set()  # before a third renewal
    running.finish()
    assert first.ended.wait(WAIT)
    assert first.close_code == 1000  # closed by us, cleanly
    assert sessions.forces[:2] == [False, True]
    assert recorder.count("renewing the connection before API Gateway's 2-hour limit") >= 1
    assert gateway.links[1].session_id != first.session_id


def test_when_the_network_is_gone_reconnecting_gives_up_with_one_line(
    gateway, sessions, recorder, start
):
    running = start()
    eventually(connected(gateway, recorder))
    gateway.stop()  # closes the listening socket and every connection
    error = running.finish()
    assert isinstance(error, ConnectionLostError)
    text = str(error)
    assert text.startswith(
        "Lost the connection to the WebSocket API and could not reconnect (3 attempts): "
        f"Cannot reach the WebSocket API at {gateway.url}"
    )
    assert "\n" not in text
    assert sessions.forces == [False, True, True, True]
    assert recorder.count("reconnect attempt") == 2


def test_a_refusal_while_reconnecting_is_retried_with_a_new_session(
    gateway, sessions, recorder, start
):
    running = start()
    eventually(connected(gateway, recorder))
    sessions.accept = False
    gateway.links[0].drop()
    eventually(lambda: len(gateway.refused) == 2)
    sessions.accept = True
    eventually(connected(gateway, recorder, count=2))
    assert sessions.forces == [False, True, True, True]
    running.stop()


def test_a_session_error_while_reconnecting_is_not_retried(gateway, sessions, recorder, start):
    running = start()
    eventually(connected(gateway, recorder))
    sessions.error = SessionRequestError("Stack orders does not exist", 404)
    gateway.links[0].drop()
    error = running.finish()
    assert isinstance(error, SessionRequestError)
    assert sessions.forces == [False, True]


def test_stop_during_the_backoff_returns_normally(gateway, sessions, recorder, start):
    running = start(first_backoff_seconds=30, max_backoff_seconds=30)
    eventually(connected(gateway, recorder))
    sessions.accept = False
    gateway.links[0].drop()
    eventually(lambda: recorder.count("reconnect attempt 1 of 3 failed") == 1)
    began = time.monotonic()
    running.stop()
    assert time.monotonic() - began < 1.5
    assert recorder.notices[-1] == "disconnected"


def test_an_unreachable_api_fails_the_first_connection_at_once(sessions, recorder):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loop = ConnectionLoop(f"ws://127.0.0.1:{port}/x", sessions, recorder, settings=FAST)
    with pytest.raises(WebSocketUnreachableError, match=rf"^Cannot reach .*127\.0\.0\.1:{port}/x"):
        loop.run()
    assert sessions.forces == [False]
