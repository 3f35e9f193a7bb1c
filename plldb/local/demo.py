"""`inv demo`: the whole journey on this machine, with the example stack in the offline cloud.

Starts the offline cloud, bootstraps plldb, deploys the example, attaches (the real `plldb`
command, from the example's directory), invokes the example's HTTP function as API Gateway
would, shows that the local handler ran and that the caller got its answer, detaches, and shows
the function restored. The attach records what it relays (`--record`); the recorded bad
request is then replayed as a pytest test through plldb's pytest plugin, the way a user turns a
real invocation into a regression test. Each phase is timed; nothing is left running.
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
BAD_REQUEST_LINE = "http-api: bad request"
WAIT_SECONDS = 90.0

Deploy = Callable[[Any, str], dict[str, str]]  # (boto3 session, stack name) -> outputs


class DemoError(PlldbError):
    """A phase of the demo did not do what it should; the message says which and why."""


@dataclass
class DemoReport:
    phases: list[tuple[str, float]] = field(default_factory=list)
    local_line: str = ""
    answer: dict[str, Any] = field(default_factory=dict)
    replay_line: str = ""


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

    _require_pytest()
    report = DemoReport()
    steps = 8

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
    workspace = tempfile.TemporaryDirectory(prefix="plldb-demo-")
    recorded = Path(workspace.name) / "recorded"
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
        record = ["--record", str(recorded)]
        with phase(4, f"plldb attach --stack-name {STACK} (from {example_dir})"):
            attach = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
                [sys.executable, "-m", "plldb", "attach", "--stack-name", STACK, *record],
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
        with phase(6, "invoking it with a body that is not a JSON object (recorded by --record)"):
            answer = lambda_client.invoke(
                FunctionName=HTTP_FUNCTION,
                Payload=json.dumps(api_gateway_event("POST", "/sessions", "not json")).encode(),
            )
            refused = json.loads(answer["Payload"].read())
            lines.wait_for(BAD_REQUEST_LINE)
            if refused.get("statusCode") != 400:
                raise DemoError(f"the bad request was not refused with 400: {refused}")
            emit(f"      the caller received status {refused['statusCode']}: {refused['body']}")
        with phase(7, "detaching (Ctrl-C) and checking the function is restored"):
            attach.send_signal(signal.SIGINT)
            attach.wait(timeout=WAIT_SECONDS)
            lines.drain()
            configuration = _wait_restored(lambda_client)
            emit(
                f"      {HTTP_FUNCTION}: timeout {configuration['Timeout']} s, layers "
                f"{len(configuration.get('Layers', []))}, no plldb variables"
            )
        with phase(8, "replaying the recorded bad request as a pytest test (plldb's plugin)"):
            test_file = _replay_test(recorded, Path(workspace.name) / "replay", example_dir)
            report.replay_line = _run_pytest(test_file, env)
            emit(f"      pytest {test_file.name}: {report.replay_line}")
    finally:
        if attach is not None and attach.poll() is None:
            attach.kill()
            attach.wait(timeout=10)
        cloud.stop()
        workspace.cleanup()
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


def _require_pytest() -> None:
    import importlib.util

    if importlib.util.find_spec("pytest") is None:
        raise DemoError(
            "the demo replays a recording as a pytest test and needs pytest: "
            'pip install -e ".[dev]" in a checkout, pip install pytest otherwise'
        )


# What a user writes once in their project's tests (examples/qr-upload/tests has the same).
_REPLAY_TEST = """\
import pytest

from plldb.testing import load_recording, recordings

TEMPLATE = {template!r}


@pytest.mark.parametrize("recording", recordings("recordings"))
def test_the_handler_still_gives_the_recorded_answer(plldb_replay, recording):
    assert plldb_replay(recording, template=TEMPLATE) == load_recording(recording).response
"""


def _replay_test(recorded: Path, folder: Path, example_dir: Path) -> Path:
    """A test folder with the recorded 400 answer and a test replaying it. The 201 answer is
    left out: it holds a fresh session id and URL each time, so no replay can match it."""
    bad_requests = [
        path
        for path in sorted(recorded.glob("*.json"))
        if (json.loads(path.read_text(encoding="utf-8")).get("response") or {}).get("statusCode")
        == 400
    ]
    if len(bad_requests) != 1:
        found = ", ".join(path.name for path in recorded.glob("*.json")) or "none"
        raise DemoError(f"--record should have written one 400 answer (files: {found})")
    (folder / "recordings").mkdir(parents=True)
    (folder / "recordings" / bad_requests[0].name).write_bytes(bad_requests[0].read_bytes())
    test_file = folder / "test_recorded_bad_request.py"
    template = str((example_dir / "template.yaml").resolve())
    test_file.write_text(_REPLAY_TEST.format(template=template), encoding="utf-8")
    return test_file


def _run_pytest(test_file: Path, env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.name],
        cwd=test_file.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    summary = (done.stdout.strip().splitlines() or ["no output"])[-1]
    if done.returncode != 0:
        raise DemoError(f"the replayed recording failed under pytest: {summary}")
    return summary
