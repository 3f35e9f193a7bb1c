"""WebSocket limits as strict as API Gateway's: maximum age, idle timeout, lost $disconnect."""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Iterator

import pytest
import websocket

from plldb.local.gateway.websocket import WebSocketGateway
from tests.functional.test_gateway import (
    ACCOUNT,
    REGION,
    WS_API,
    FakeInvoker,
    _authorize,
    _connect,
    _connect_client,
    _echo,
    _management,
    _wait_until_postable,
)


@pytest.fixture
def invoker() -> FakeInvoker:
    return FakeInvoker(
        {
            "authorize": _authorize,
            "connect": _connect,
            "echo": _echo,
            "disconnect": lambda event: {"statusCode": 200},
        }
    )


@contextlib.contextmanager
def _gateway(invoker: FakeInvoker, **limits: float) -> Iterator[WebSocketGateway]:
    gateway = WebSocketGateway(invoker, REGION, ACCOUNT, **limits)
    gateway.add_api(WS_API)
    with gateway:
        yield gateway


def _open(gateway: WebSocketGateway, invoker: FakeInvoker) -> tuple[websocket.WebSocket, str]:
    """A connected client, once @connections knows it, and its connection id."""
    client = _connect_client(gateway)
    connection_id = invoker.wait_for("connect")[-1]["requestContext"]["connectionId"]
    _wait_until_postable(_management(gateway), connection_id)
    return client, connection_id


def _close_frame(client: websocket.WebSocket) -> tuple[int, str]:
    """Read until the server's close frame (answering it); its code and reason."""
    while True:
        opcode, frame = client.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            client.shutdown()
            (code,) = struct.unpack("!H", frame.data[:2])
            return code, frame.data[2:].decode()


def _assert_gone(gateway: WebSocketGateway, connection_id: str) -> None:
    management = _management(gateway)
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=connection_id)
    with pytest.raises(management.exceptions.GoneException):
        management.delete_connection(ConnectionId=connection_id)


def test_an_idle_client_is_closed_with_going_away_and_disconnect_arrives_once(invoker):
    with _gateway(invoker, idle_timeout_seconds=1.0) as gateway:
        started = time.monotonic()
        client, connection_id = _open(gateway, invoker)
        client.settimeout(5)
        assert _close_frame(client) == (1001, "Going away")
        assert 0.95 <= time.monotonic() - started < 2.5
        _assert_gone(gateway, connection_id)
        (event,) = invoker.wait_for("disconnect")
        time.sleep(0.3)  # a second $disconnect would show up here
        assert len(invoker.events("disconnect")) == 1
        assert event["requestContext"]["connectionId"] == connection_id
        assert event["requestContext"]["disconnectStatusCode"] == 1001
        assert event["requestContext"]["disconnectReason"] == "Going away"


def test_ping_frames_do_not_count_as_activity(invoker):
    with _gateway(invoker, idle_timeout_seconds=1.0) as gateway:
        started = time.monotonic()
        client, connection_id = _open(gateway, invoker)
        client.settimeout(0.25)
        code = None
        while code is None and time.monotonic() - started < 5:
            client.ping("still here")
            try:
                opcode, frame = client.recv_data_frame(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                client.shutdown()
                (code,) = struct.unpack("!H", frame.data[:2])
        assert code == 1001
        assert time.monotonic() - started < 2.5
        _assert_gone(gateway, connection_id)


def test_a_busy_client_outlives_the_idle_timeout_but_not_the_maximum_age(invoker):
    with _gateway(invoker, idle_timeout_seconds=1.0, max_connection_seconds=3.0) as gateway:
        started = time.monotonic()
        client, connection_id = _open(gateway, invoker)
        client.settimeout(5)
        echoes, code = 0, None
        while code is None and time.monotonic() - started < 6:
            client.send(f"turn {echoes}")
            opcode, frame = client.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                client.shutdown()
                (code,) = struct.unpack("!H", frame.data[:2])
            echoes += 1
            time.sleep(0.3)
        lived = time.monotonic() - started
        assert code == 1001
        assert 2.7 <= lived < 4.5, lived  # well past the 1 s idle timeout, ended by age
        assert echoes >= 6
        _assert_gone(gateway, connection_id)
        (event,) = invoker.wait_for("disconnect")
        assert event["requestContext"]["disconnectStatusCode"] == 1001


def test_lossy_disconnect_closes_without_running_disconnect(invoker):
    with _gateway(invoker, idle_timeout_seconds=1.0, disconnect_delivery=0.0) as gateway:
        closed_by_client, first = _open(gateway, invoker)
        closed_by_client.close()
        idle, second = _open(gateway, invoker)
        idle.settimeout(5)
        assert _close_frame(idle) == (1001, "Going away")
        _assert_gone(gateway, first)
        _assert_gone(gateway, second)
        time.sleep(0.5)  # a $disconnect, which must not come, would show up here
        assert invoker.events("disconnect") == []
