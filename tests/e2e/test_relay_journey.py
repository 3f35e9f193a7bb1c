"""The debug relay end to end: deployed functions invoked in the offline cloud, answered locally."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from plldb.attach.debugger import DebugpySettings, launch_configuration
from tests.e2e.dap import DapClient
from tests.e2e.support import (
    TARGET,
    AttachProcess,
    client,
    configurations,
    is_instrumented,
    start_attach,
    wait_for,
)

pytestmark = pytest.mark.e2e

RELAYED = ("plain", "failing", "wrapped", "shout")


def invoke(cloud: Any, name: str, event: Any) -> dict[str, Any]:
    """Invoke a deployed function as a caller in AWS would; the payload decoded."""
    answer = client(cloud, "lambda").invoke(
        FunctionName=f"{TARGET}-{name}", Payload=json.dumps(event).encode()
    )
    return {
        "payload": json.loads(answer["Payload"].read() or b"null"),
        "error": answer.get("FunctionError"),
    }


def wait_until_instrumented(cloud: Any, attach: AttachProcess, names: tuple[str, ...]) -> None:
    attach.wait_for(f"instrumented {len(names)}/{len(names)}", timeout=60)
    wanted = {f"{TARGET}-{name}" for name in names}
    assert wait_for(
        lambda: {n for n, c in configurations(cloud).items() if is_instrumented(c)} == wanted
    )


def wait_until_restored(cloud: Any) -> None:
    assert wait_for(lambda: configurations(cloud) == cloud.originals, timeout=120, interval=0.5), (
        configurations(cloud)
    )


@pytest.fixture(scope="class")
def debugger(cloud):
    """One debugger attached for a whole class, as a developer keeps it open."""
    globs = [argument for name in RELAYED for argument in ("--function", f"*-{name}")]
    attach = start_attach(cloud, *globs)
    try:
        wait_until_instrumented(cloud, attach, RELAYED)
        yield attach
    finally:
        assert attach.stop() == 130  # Ctrl-C: docs/troubleshooting.md
    wait_until_restored(cloud)


class TestAttached:
    """One debugger attached for the whole class, as a developer keeps it open."""

    def test_the_local_handler_answers_the_caller(self, cloud, debugger):
        answer = invoke(cloud, "plain", {"order": 7})
        assert answer["error"] is None
        payload = answer["payload"]
        assert payload["ran"] == "locally" and payload["echo"] == {"order": 7}
        assert payload["function"] == f"{TARGET}-plain"
        assert payload["stage"] == "test"  # the deployed function's own variable
        assert 0 < payload["remaining_ms"] <= 900_000  # follows the raised deadline
        assert payload["memory"] == 128 and payload["log_group"] == f"/aws/lambda/{TARGET}-plain"
        debugger.wait_for("local plain handler got {'order': 7}")  # printed on this machine

    def test_a_local_exception_reaches_the_caller_in_lambdas_error_shape(self, cloud, debugger):
        answer = invoke(cloud, "failing", {})
        assert answer["error"] == "Unhandled"
        payload = answer["payload"]
        assert payload["errorType"] == "KeyError"
        assert "raised by the local handler" in payload["errorMessage"]
        assert any("failing.py" in line for line in payload["stackTrace"])

    def test_ten_concurrent_invocations_each_get_their_own_answer(self, cloud, debugger):
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(lambda n: invoke(cloud, "plain", {"n": n}), range(10)))
        assert [answer["payload"]["echo"] for answer in answers] == [{"n": n} for n in range(10)]
        assert all(answer["payload"]["ran"] == "locally" for answer in answers)

    def test_a_1_mb_event_goes_through(self, cloud, debugger):
        blob = "".join(f"{n:07d}" for n in range(150_000))  # 1.05 MB
        answer = invoke(cloud, "wrapped", {"blob": blob})
        assert answer == {"payload": {"ran": "locally", "size": len(blob)}, "error": None}

    def test_a_function_without_local_source_fails_clearly_and_the_others_go_on(
        self, cloud, debugger
    ):
        answer = invoke(cloud, "shout", {"body": "hi"})
        assert answer["error"] == "Unhandled"
        assert answer["payload"]["errorType"] == "plldb.SourceNotFound"
        assert f"{TARGET}-shout" in answer["payload"]["errorMessage"]
        assert "shout.py" in answer["payload"]["errorMessage"]
        assert invoke(cloud, "plain", {"after": True})["payload"]["ran"] == "locally"


def test_without_a_debugger_the_deployed_handler_answers(cloud):
    wait_until_restored(cloud)
    answer = invoke(cloud, "plain", {"order": 8})
    assert answer["error"] is None
    assert "ran" not in answer["payload"] and answer["payload"]["echo"] == {"order": 8}


def test_a_killed_debugger_hands_its_invocation_back_and_everything_is_restored(cloud):
    attach = start_attach(cloud, "--function", "*-slow")
    try:
        wait_until_instrumented(cloud, attach, ("slow",))
        answers: list[dict[str, Any]] = []
        caller = threading.Thread(
            target=lambda: answers.append(invoke(cloud, "slow", {"seconds": 30}))
        )
        caller.start()
        attach.wait_for("invoked offline-fixture-slow")
        time.sleep(0.5)
        attach.process.send_signal(signal.SIGKILL)
        caller.join(timeout=60)
    finally:
        attach.stop(signal.SIGKILL)
    # The deployed handler ran instead: its own answer, not the local one.
    assert answers == [{"payload": "too late", "error": None}]
    wait_until_restored(cloud)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_ide_attached_with_debugpy_stops_a_relayed_invocation_at_a_breakpoint(cloud):
    port = _free_port()
    attach = start_attach(
        cloud, "--function", "*-plain", "--debugpy", "--debugpy-port", str(port),
        "--wait-for-client",
    )  # fmt: skip
    dap = None
    try:
        attach.wait_for(f"debugpy listening on 127.0.0.1:{port}")
        wait_until_instrumented(cloud, attach, ("plain",))
        source = cloud.project / "src" / "plain.py"
        line = 1 + next(
            n for n, text in enumerate(source.read_text().splitlines()) if "print(" in text
        )
        dap = DapClient("127.0.0.1", port)
        dap.request("initialize", clientID="plldb-tests", adapterID="debugpy",
                    pathFormat="path", linesStartAt1=True, columnsStartAt1=True)  # fmt: skip
        attached = dap.send("attach", **launch_configuration(DebugpySettings(port=port)))
        dap.event("initialized")
        breakpoints = dap.request(
            "setBreakpoints", source={"path": str(source)}, breakpoints=[{"line": line}]
        )
        assert breakpoints["body"]["breakpoints"][0]["verified"]
        dap.request("configurationDone")
        dap.response(attached)

        # Two concurrent invocations: each stops at the breakpoint on a thread of its own.
        answers: list[dict[str, Any]] = []
        callers = [
            threading.Thread(target=lambda n=n: answers.append(invoke(cloud, "plain", {"n": n})))
            for n in range(2)
        ]
        for caller in callers:
            caller.start()
        threads = []
        while len(set(threads)) < 2:
            stopped = dap.event("stopped", timeout=60)["body"]
            assert stopped["reason"] == "breakpoint"
            threads.append(stopped["threadId"])
            frames = dap.request("stackTrace", threadId=stopped["threadId"])["body"]["stackFrames"]
            if frames:  # empty when a continue of another thread already resumed this one
                assert frames[0]["source"]["path"] == str(source)
                assert frames[0]["line"] == line
            if len(threads) == 1:
                # Both requests reach the CLI while the first is stopped: its connection runs on.
                attach.wait_for("invoked offline-fixture-plain", timeout=60)
                attach.wait_for("invoked offline-fixture-plain", timeout=60)
                assert answers == []  # the callers wait while we are stopped
            dap.send("continue", threadId=stopped["threadId"])
        assert len(set(threads)) == 2
        for caller in callers:
            caller.join(timeout=60)
        assert sorted(a["payload"]["echo"]["n"] for a in answers) == [0, 1]
        assert all(a["error"] is None and a["payload"]["ran"] == "locally" for a in answers)
    finally:
        if dap is not None:
            dap.close()
        attach.stop()
    wait_until_restored(cloud)


def test_one_ctrl_c_with_a_held_invocation_restores_and_exits_130_promptly(cloud):
    port = _free_port()
    attach = start_attach(
        cloud, "--function", "*-plain", "--debugpy", "--debugpy-port", str(port),
        "--wait-for-client",
    )  # fmt: skip
    answers: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: answers.append(invoke(cloud, "plain", {"n": 1})))
    try:
        wait_until_instrumented(cloud, attach, ("plain",))
        caller.start()
        attach.wait_for("invoked offline-fixture-plain", timeout=60)  # held: no IDE attached
        time.sleep(0.5)
        assert attach.process.poll() is None
        signalled = time.monotonic()
        code = attach.stop(signal.SIGINT, timeout=120)
        took = time.monotonic() - signalled
    finally:
        attach.stop(signal.SIGKILL)
    assert code == 130, attach.stderr
    assert took < 20, f"exit took {took:.1f} s: {attach.stderr}"
    assert "plldb: disconnected" in attach.stderr
    assert not any("frozen modules" in line for line in attach.stderr)  # debugpy kept quiet
    assert any(line.startswith("plldb: restored ") for line in attach.stderr), attach.stderr
    wait_until_restored(cloud)
    caller.join(timeout=120)
    assert not caller.is_alive()


@pytest.fixture
def slow_iam():
    """IAM applying new policies 5 s late, as OfflineCloud(iam_propagation_seconds=5) starts."""
    from plldb.local.iam import propagation

    propagation.configure(5.0)
    try:
        yield
    finally:
        propagation.configure(0.0)


def test_the_first_invocation_while_iam_applies_the_relay_grant_is_still_relayed(cloud, slow_iam):
    """Issue 13: right after attach, the relay's AssumeRole is denied until IAM catches up."""
    attach = start_attach(cloud, "--function", "*-plain")
    try:
        wait_until_instrumented(cloud, attach, ("plain",))
        attach.wait_for("not live yet")  # attach says IAM may still be applying the grant
        answer = invoke(cloud, "plain", {"order": 9})
        assert answer["error"] is None
        assert answer["payload"]["ran"] == "locally", answer
    finally:
        assert attach.stop() == 130
    wait_until_restored(cloud)
