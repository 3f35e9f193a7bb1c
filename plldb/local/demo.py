"""`inv demo`: the whole journey on this machine, with the example stack in the offline cloud.

Starts the offline cloud, bootstraps plldb, deploys the example, attaches (the real `plldb`
command, from the example's directory), invokes the example's HTTP function as API Gateway
would, shows that the local handler ran and that the caller got its answer, detaches, and shows
the function restored. Each phase is timed; nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plldb.errors import PlldbError

STACK = "qr-upload-dev"
HTTP_FUNCTION = "qr-upload-http-api-dev"
LOCAL_LOG_LINE = "http-api: created session"
WAIT_SECONDS = 90.0

Deploy = Callable[[Any, str], dict[str, str]]  # (boto3 session, stack name) -> outputs


class DemoError(PlldbError):
    """A phase of the demo did not do what it should; the message says which and why."""


@dataclass
class DemoReport:
    phases: list[tuple[str, float]] = field(default_factory=list)
    local_line: str = ""
    answer: dict[str, Any] = field(default_factory=dict)


def api_gateway_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event, as API Gateway sends it to the function."""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
            "requestId": "demo",
            "stage": "$default",
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


class _Lines:
    """A child process's stdout and stderr, line by line, kept and searchable."""

    def __init__(self, process: subprocess.Popen[str], echo: Callable[[str], None]) -> None:
        self.process = process
        self.echo = echo
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        for stream in (process.stdout, process.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = WAIT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None and self._queue.empty():
                    break
                continue
            self.seen.append(line)
            self.echo(f"  | {line}")
            if text in line:
                return line
        tail = "; ".join(self.seen[-5:]) or "nothing"
        raise DemoError(f"`plldb attach` never said {text!r} (it said: {tail})")

    def drain(self) -> None:
        while not self._queue.empty():
            line = self._queue.get()
            self.seen.append(line)
            self.echo(f"  | {line}")


def run_demo(
    example_dir: Path,
    deploy: Deploy,
    emit: Callable[[str], None] = print,
    region: str = "eu-west-1",
) -> DemoReport:
    """The whole journey; raises DemoError naming the phase that failed."""
    from plldb.local.foreground import require_local_extra

    try:
        require_local_extra()
    except PlldbError as error:
        raise DemoError(str(error)) from None
    from plldb.local.cloud import OfflineCloud

    report = DemoReport()
    steps = 6

    @contextlib.contextmanager
    def phase(number: int, title: str) -> Iterator[None]:
        emit(f"[{number}/{steps}] {title}")
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        report.phases.append((title, elapsed))
        emit(f"      done in {elapsed:.1f} s")

    with phase(1, "starting the offline cloud (moto, the Lambda front, API Gateway stand-ins)"):
        cloud = OfflineCloud(region=region).start()
    attach: subprocess.Popen[str] | None = None
    saved_environ = dict(os.environ)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLLDB_"))}
        env.update(cloud.environment())
        with phase(2, "plldb bootstrap setup"), tempfile.TemporaryDirectory() as build:
            _run([sys.executable, "-m", "plldb", "bootstrap", "setup", "--build-dir", build], env)
            cloud.sync()
        with phase(3, f"deploying the example stack {STACK} from {example_dir}"):
            outputs = deploy(_boto3_session(cloud), STACK)
            cloud.sync()
            emit(f"      {len(outputs)} outputs, functions {HTTP_FUNCTION} and its twin")
        with phase(4, f"plldb attach --stack-name {STACK} (from {example_dir})"):
            attach = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
                [sys.executable, "-m", "plldb", "attach", "--stack-name", STACK],
                cwd=example_dir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            lines = _Lines(attach, emit)
            lines.wait_for("connected")
            lines.wait_for("instrumented 2/2")
        with phase(5, f"invoking {HTTP_FUNCTION} in the cloud, as API Gateway would"):
            lambda_client = _boto3_session(cloud).client("lambda")
            answer = lambda_client.invoke(
                FunctionName=HTTP_FUNCTION,
                Payload=json.dumps(api_gateway_event("POST", "/sessions", {})).encode(),
            )
            report.answer = json.loads(answer["Payload"].read())
            report.local_line = lines.wait_for(LOCAL_LOG_LINE)
            if answer.get("FunctionError") or report.answer.get("statusCode") != 201:
                raise DemoError(f"the caller got an error: {report.answer}")
            emit(f"      the local handler printed: {report.local_line.strip()}")
            emit(f"      the caller received: {json.dumps(report.answer)[:200]}")
        with phase(6, "detaching (Ctrl-C) and checking the function is restored"):
            attach.send_signal(signal.SIGINT)
            attach.wait(timeout=WAIT_SECONDS)
            lines.drain()
            configuration = _wait_restored(lambda_client)
            emit(
                f"      {HTTP_FUNCTION}: timeout {configuration['Timeout']} s, layers "
                f"{len(configuration.get('Layers', []))}, no plldb variables"
            )
    finally:
        if attach is not None and attach.poll() is None:
            attach.kill()
            attach.wait(timeout=10)
        cloud.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
    return report


def _boto3_session(cloud: Any) -> Any:
    import boto3

    # boto3 reads AWS_ENDPOINT_URL(_LAMBDA) from the environment: the offline cloud's.
    os.environ.update(cloud.environment())
    return boto3.Session(region_name=cloud.region)


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        command, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DemoError(f"{' '.join(command[2:])} failed: {last}")


def _wait_restored(lambda_client: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        configuration = lambda_client.get_function_configuration(FunctionName=HTTP_FUNCTION)
        variables = (configuration.get("Environment") or {}).get("Variables") or {}
        if not any(name.startswith("PLLDB_") for name in variables) and (
            "AWS_LAMBDA_EXEC_WRAPPER" not in variables
        ):
            return configuration
        time.sleep(0.2)
    raise DemoError(f"{HTTP_FUNCTION} was not restored within {WAIT_SECONDS:.0f} s")
