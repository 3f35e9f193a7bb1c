"""`plldb attach` whole: signed POST /sessions over HTTP, the WebSocket, SIGINT/SIGTERM, output."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from plldb import protocol
from plldb.attach.connection import LoopSettings
from plldb.attach.runner import attach
from plldb.aws import AwsTarget
from plldb.cli import main
from tests.functional.test_attach_connection import WAIT, FakeGateway, Recorder, eventually
from tests.functional.test_attach_sessions import ACCOUNT, KEYS, REGION, FakeManagementApi


class Backend:
    """The management API and the WebSocket API, sharing the sessions the first one creates."""

    def __init__(self) -> None:
        self.gateway = FakeGateway()
        self.api = FakeManagementApi()
        self.counter = itertools.count(1)
        self.api.answer = self._create

    def _create(self) -> tuple[int, dict]:
        session_id = f"cli{next(self.counter):05d}-secret-rest-of-the-id"
        self.gateway.valid.add(session_id)
        return 201, {"sessionId": session_id, "expiresAt": 1700003600}

    def stop(self) -> None:
        self.api.stop()
        self.gateway.stop()


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project directory holding the target stack's template, as the working directory."""
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  Orders:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {Handler: app.handler, CodeUri: src}\n"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def backend() -> Iterator[Backend]:
    both = Backend()
    yield both
    both.stop()


def signal_when_connected(backend: Backend, number: int, before=None) -> threading.Thread:
    def run() -> None:
        eventually(lambda: len(backend.gateway.live()) == 1)
        if before is not None:
            before(backend.gateway.links[0])
        time.sleep(0.1)  # let the client take in what was sent
        os.kill(os.getpid(), number)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def target() -> AwsTarget:
    session = boto3.Session(
        aws_access_key_id="AKIDPLLDBTEST",
        aws_secret_access_key=KEYS["AKIDPLLDBTEST"],
        region_name=REGION,
    )
    return AwsTarget(session=session, account_id=ACCOUNT, region=REGION)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_attach_cleanly_and_the_handlers_come_back(backend, guard, number, project):
    recorder = Recorder()
    handlers = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    sender = signal_when_connected(backend, number)
    detached = attach(
        target(),
        "orders",
        recorder,
        management_api_url=backend.api.url,
        websocket_url=backend.gateway.url,
        settings=LoopSettings(poll_seconds=0.05),
        environ={},
    )
    sender.join(WAIT)
    assert guard == []  # attach's own handler took the signal
    assert {n: signal.getsignal(n) for n in handlers} == handlers
    (request,) = backend.api.requests
    assert request["verdict"].ok
    assert request["body"] == {"stackName": "orders", "force": False}
    link = backend.gateway.links[0]
    assert link.ended.wait(WAIT)
    assert link.close_code == 1000
    assert recorder.notices[0].startswith(f"connected to {backend.gateway.url} for stack orders")
    assert recorder.notices[-2:] == ["disconnected", "restored 0 functions"]
    assert detached.signal == number


def test_the_command_prints_messages_and_exits_130_on_sigterm(
    backend, guard, moto_aws, monkeypatch, capsys, project
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPLLDBTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["AKIDPLLDBTEST"])
    monkeypatch.setenv("PLLDB_WEBSOCKET_URL", backend.gateway.url)

    def push(link) -> None:
        link.push(protocol.encode(protocol.info("Attached to orders: 2 functions")))
        link.push(protocol.encode(protocol.error("Cannot instrument orders-fn")))
        link.push("not json")
        link.push(protocol.encode(protocol.keepalive()))

    sender = signal_when_connected(backend, signal.SIGTERM, before=push)
    argv = ["plldb", "attach", "--stack-name", "orders", "--management-api-url", backend.api.url]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 130  # stopped by a signal, as docs/troubleshooting.md says
    sender.join(WAIT)
    out, err = capsys.readouterr()
    assert out == "Attached to orders: 2 functions\n"
    lines = err.splitlines()
    assert lines[0] == (
        f"plldb: connected to {backend.gateway.url} for stack orders (session cli00001…)"
    )
    assert "plldb: backend error: Cannot instrument orders-fn" in lines
    assert any(line.startswith("plldb: ignored a malformed message: ") for line in lines)
    assert lines[-2:] == ["plldb: disconnected", "plldb: restored 0 functions"]
    assert "secret-rest-of-the-id" not in out + err
    assert guard == []


def test_the_command_turns_a_refusal_into_one_line_and_exit_1(
    backend, moto_aws, monkeypatch, capsys, project
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPLLDBTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["AKIDPLLDBTEST"])
    backend.api.answer = (
        409,
        {"message": "already attached", "activeSince": "2026-01-02T10:00:00Z"},
    )
    argv = [
        "plldb",
        "attach",
        "-s",
        "orders",
        "--management-api-url",
        backend.api.url,
        "--websocket-url",
        backend.gateway.url,
    ]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("plldb: error: Stack orders already has a debugger attached since ")
    assert err.rstrip().endswith("use --force to take over")
    assert len(err.strip().splitlines()) == 1


def test_the_command_without_a_plldb_stack_says_to_bootstrap(moto_aws, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["plldb", "attach", "--stack-name", "orders"])
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "plldb: error: No plldb stack in eu-west-1: run `plldb bootstrap setup` first"
    )


def test_without_a_template_nothing_is_attached(backend, moto_aws, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPLLDBTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["AKIDPLLDBTEST"])
    monkeypatch.chdir(tmp_path)
    argv = [
        "plldb",
        "attach",
        "-s",
        "orders",
        "--management-api-url",
        backend.api.url,
        "--websocket-url",
        backend.gateway.url,
    ]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"plldb: error: no template.yaml, template.yml or template.json in {tmp_path}: "
        "pass --template PATH"
    )
    assert backend.api.requests == []  # no session was created
    with pytest.raises(SystemExit):
        main([*argv, "--template", "missing.yaml"])
    assert "missing.yaml not found" in capsys.readouterr().err
    assert backend.api.requests == []


def test_a_debugpy_port_in_use_stops_attach_before_any_session(
    backend, moto_aws, monkeypatch, capsys, project
):
    import socket

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPLLDBTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["AKIDPLLDBTEST"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [
            "plldb",
            "attach",
            "-s",
            "orders",
            "--management-api-url",
            backend.api.url,
            "--websocket-url",
            backend.gateway.url,
        ]
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--debugpy", "--debugpy-port", str(port)])
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"plldb: error: --debugpy-port {port} on 127.0.0.1 is already in use: "
        "pick another with --debugpy-port"
    )
    assert backend.api.requests == []  # nothing was attached
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--wait-for-client"])
    assert refused.value.code == 1
    assert "needs --debugpy" in capsys.readouterr().err
