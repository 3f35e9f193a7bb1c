"""LocalInvoker: results and Lambda's error shapes, module and environment isolation, context."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from plldb.attach.environment import OverlayEnviron, environ_overlay
from plldb.attach.invocation import Invocation, InvocationResult, LambdaContext
from plldb.attach.invoker import LocalInvoker
from plldb.attach.local_source import LocalFunction, SourceNotFoundError


class FakeSources:
    def __init__(self, functions: dict[str, LocalFunction]) -> None:
        self.functions = functions

    def resolve(self, function_name: str) -> LocalFunction:
        if function_name not in self.functions:
            raise SourceNotFoundError(f"no local source for function {function_name}")
        return self.functions[function_name]


def _function(
    tmp_path: Path, name: str, source: str, handler: str = "app.handler"
) -> LocalFunction:
    code_dir = tmp_path / name
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "app.py").write_text(textwrap.dedent(source))
    return LocalFunction(name, name.title(), code_dir, handler)


def _invocation(function_name: str, event=None, **kwargs) -> Invocation:
    kwargs.setdefault("deadline_ms", int(time.time() * 1000) + 60_000)
    return Invocation(f"req-{function_name}", function_name, event, **kwargs)


@pytest.fixture
def make_invoker():
    invokers: list[LocalInvoker] = []

    def make(*functions: LocalFunction) -> LocalInvoker:
        invoker = LocalInvoker(FakeSources({f.function_name: f for f in functions}))
        invokers.append(invoker)
        return invoker

    yield make
    for invoker in invokers:
        invoker.close()


ECHO = "def handler(event, context):\n    return event\n"


def test_handler_result_is_the_payload(tmp_path, make_invoker):
    invoker = make_invoker(_function(tmp_path, "echo", ECHO))
    event = {"body": "hi", "items": [1, 2.5, None, True]}
    assert invoker.invoke(_invocation("echo", event)) == InvocationResult("req-echo", event)


def test_raised_exception_has_lambdas_error_shape(tmp_path, make_invoker):
    source = """\
    def handler(event, context):
        return helper()

    def helper():
        raise ValueError("bad order 7")
    """
    function = _function(tmp_path, "boom", source)
    result = make_invoker(function).invoke(_invocation("boom"))
    assert result.payload is None
    assert result.error["errorType"] == "ValueError"
    assert result.error["errorMessage"] == "bad order 7"
    trace = result.error["stackTrace"]
    assert len(trace) == 2
    assert trace[0].startswith(f'  File "{function.code_dir / "app.py"}", line 2, in handler')
    assert "in helper" in trace[1]
    assert 'raise ValueError("bad order 7")' in trace[1]


def test_import_error_is_import_module_error(tmp_path, make_invoker):
    invoker = make_invoker(_function(tmp_path, "imp", "import no_such_module_plldb\n" + ECHO))
    error = invoker.invoke(_invocation("imp")).error
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"].startswith("Unable to import module 'app': ")
    assert "no_such_module_plldb" in error["errorMessage"]


def test_syntax_error_is_user_code_syntax_error(tmp_path, make_invoker):
    invoker = make_invoker(_function(tmp_path, "syntax", "def handler(event, context)\n"))
    assert invoker.invoke(_invocation("syntax")).error["errorType"] == (
        "Runtime.UserCodeSyntaxError"
    )


def test_missing_handler_is_handler_not_found(tmp_path, make_invoker):
    function = _function(tmp_path, "nohandler", ECHO, handler="app.main")
    error = make_invoker(function).invoke(_invocation("nohandler")).error
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "Handler 'main' missing on module 'app'"


def test_unserialisable_result_is_marshal_error_but_decimal_is_a_number(tmp_path, make_invoker):
    source = """\
    from decimal import Decimal

    def handler(event, context):
        return {1, 2} if event == "set" else {"price": Decimal("1.5")}
    """
    invoker = make_invoker(_function(tmp_path, "marshal", source))
    assert invoker.invoke(_invocation("marshal", "set")).error["errorType"] == (
        "Runtime.MarshalError"
    )
    assert invoker.invoke(_invocation("marshal", "decimal")).payload == {"price": 1.5}


def test_sys_exit_is_runtime_exit_error(tmp_path, make_invoker):
    source = "import sys\n\ndef handler(event, context):\n    sys.exit(3)\n"
    error = make_invoker(_function(tmp_path, "exits", source)).invoke(_invocation("exits")).error
    assert error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]


def test_missing_source_is_an_error_result_and_other_functions_keep_working(tmp_path, make_invoker):
    invoker = make_invoker(_function(tmp_path, "echo", ECHO))
    error = invoker.invoke(_invocation("ghost")).error
    assert error["errorType"] == "plldb.SourceNotFound"
    assert error["errorMessage"] == "no local source for function ghost"
    assert invoker.invoke(_invocation("echo", 5)).payload == 5


def test_an_edited_module_is_reloaded_on_the_next_invocation(tmp_path, make_invoker):
    function = _function(tmp_path, "edited", "def handler(event, context):\n    return 1\n")
    (function.code_dir / "helper.py").write_text("VALUE = 'a'\n")
    app = function.code_dir / "app.py"
    app.write_text("import helper\n\ndef handler(event, context):\n    return helper.VALUE\n")
    invoker = make_invoker(function)
    assert invoker.invoke(_invocation("edited")).payload == "a"
    helper = function.code_dir / "helper.py"
    helper.write_text("VALUE = 'b'\n")
    os.utime(helper, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert invoker.invoke(_invocation("edited")).payload == "b"
    assert invoker.invoke(_invocation("edited")).payload == "b"


def test_module_is_loaded_once_per_function(tmp_path, make_invoker):
    source = (
        "CALLS = []\n\ndef handler(event, context):\n    CALLS.append(1)\n    return len(CALLS)\n"
    )
    invoker = make_invoker(_function(tmp_path, "counter", source))
    assert [invoker.invoke(_invocation("counter")).payload for _ in range(3)] == [1, 2, 3]


def test_same_handler_name_in_two_directories_gets_two_modules(tmp_path, make_invoker):
    functions = []
    for name in ("orders", "reports"):
        function = _function(
            tmp_path / "src",
            name,
            "import helpers\n\ndef handler(event, context):\n"
            "    return [helpers.NAME, __file__, __name__]\n",
        )
        (function.code_dir / "helpers.py").write_text(f"NAME = {name!r}\n")
        functions.append(function)
    invoker = make_invoker(*functions)
    for function in functions:
        name = function.function_name
        expected = [name, str(function.code_dir / "app.py"), "app"]
        assert invoker.invoke(_invocation(name)).payload == expected
    # Each function's modules live apart from sys.modules, and code_dir left sys.path.
    assert "app" not in sys.modules
    assert "helpers" not in sys.modules
    assert not any(str(tmp_path) in entry for entry in sys.path)


def test_venv_modules_inside_the_code_dir_stay_shared(tmp_path, make_invoker):
    function = _function(tmp_path, "project", "import vendored_lib\n" + ECHO)
    site = function.code_dir / ".venv/lib/site-packages"
    site.mkdir(parents=True)
    (site / "vendored_lib.py").write_text("")
    sys.path.append(str(site))
    try:
        assert make_invoker(function).invoke(_invocation("project", 1)).payload == 1
        assert "vendored_lib" in sys.modules
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("vendored_lib", None)


ENVIRONMENT_HANDLER = """\
import os
import time

def handler(event, context):
    event["barrier"].wait(timeout=10)
    time.sleep(0.01)
    os.environ["WRITTEN"] = os.environ["X"]
    return {
        "item": os.environ["X"],
        "get": os.environ.get("X"),
        "getenv": os.getenv("X"),
        "in": "X" in os.environ,
        "iterated": "X" in list(os.environ),
        "copy": os.environ.copy()["X"],
        "process": os.environ["PROCESS_ONLY"],
        "written": os.environ["WRITTEN"],
    }
"""


def test_concurrent_invocations_each_see_their_own_environment(tmp_path, make_invoker, monkeypatch):
    monkeypatch.delenv("X", raising=False)
    monkeypatch.delenv("WRITTEN", raising=False)
    monkeypatch.setenv("PROCESS_ONLY", "process")
    real = os.environ
    before = dict(os.environ)
    functions = [_function(tmp_path, name, ENVIRONMENT_HANDLER) for name in ("alpha", "beta")]
    invoker = make_invoker(*functions)
    barrier = threading.Barrier(10)
    results: list[InvocationResult] = []
    futures = []
    for index in range(10):
        name = functions[index % 2].function_name
        invocation = Invocation(
            f"req-{index}",
            name,
            {"barrier": barrier},
            int(time.time() * 1000) + 60_000,
            environment={"X": f"{name}-value"},
        )
        futures.append(invoker.submit(invocation, results.append))
    for future in futures:
        assert future.result(timeout=30).error is None
    assert len(results) == 10
    for result in results:
        value = ("alpha" if int(result.request_id[4:]) % 2 == 0 else "beta") + "-value"
        assert result.payload == {
            "item": value,
            "get": value,
            "getenv": value,
            "in": True,
            "iterated": True,
            "copy": value,
            "process": "process",
            "written": value,
        }
    assert dict(os.environ) == before
    invoker.close()
    assert os.environ is real
    assert not isinstance(os.environ, OverlayEnviron)


CREDENTIALS_HANDLER = """\
import os

NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")

def handler(event, context):
    return {name: os.environ.get(name) for name in NAMES + ("AWS_REGION",)}
"""


def test_developer_credentials_apply_unless_the_role_credentials_are_given(
    tmp_path, make_invoker, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "developer-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "developer-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "developer-token")
    monkeypatch.setenv("AWS_PROFILE", "developer")
    invoker = make_invoker(_function(tmp_path, "creds", CREDENTIALS_HANDLER))
    deployed = {
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "function-key",
        "AWS_SESSION_TOKEN": "function-token",
        "AWS_PROFILE": "function-profile",
    }
    own = invoker.invoke(_invocation("creds", environment=deployed)).payload
    assert own == {
        "AWS_ACCESS_KEY_ID": "developer-key",
        "AWS_SECRET_ACCESS_KEY": "developer-secret",
        "AWS_SESSION_TOKEN": "developer-token",
        "AWS_PROFILE": "developer",
        "AWS_REGION": "eu-west-1",
    }
    role = {"AWS_ACCESS_KEY_ID": "role-key", "AWS_SECRET_ACCESS_KEY": "role-secret"}
    borrowed = invoker.invoke(_invocation("creds", environment=deployed, credentials=role)).payload
    assert borrowed == {
        "AWS_ACCESS_KEY_ID": "role-key",
        "AWS_SECRET_ACCESS_KEY": "role-secret",
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_REGION": "eu-west-1",
    }
    assert os.environ["AWS_ACCESS_KEY_ID"] == "developer-key"
    assert os.environ["AWS_PROFILE"] == "developer"


def test_overlay_is_transparent_outside_invocations_and_removed_on_exit(monkeypatch):
    real = os.environ
    with environ_overlay():
        assert isinstance(os.environ, OverlayEnviron)
        os.environ["PLLDB_OUTSIDE"] = "1"
        assert real["PLLDB_OUTSIDE"] == "1"
        assert dict(os.environ) == dict(real)
        del os.environ["PLLDB_OUTSIDE"]
        assert "PLLDB_OUTSIDE" not in real
        with pytest.raises(TypeError):
            os.environ["PLLDB_OUTSIDE"] = 1  # type: ignore[assignment]
    assert os.environ is real


CONTEXT_HANDLER = """\
def handler(event, context):
    return {
        "name": context.function_name,
        "version": context.function_version,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "request": context.aws_request_id,
        "group": context.log_group_name,
        "stream": context.log_stream_name,
        "identity": context.identity.cognito_identity_id,
        "app": context.client_context.client.app_title,
        "custom": context.client_context.custom,
        "remaining": context.get_remaining_time_in_millis(),
    }
"""


def test_context_attributes_come_from_the_invocation(tmp_path, make_invoker):
    invoker = make_invoker(_function(tmp_path, "ctx", CONTEXT_HANDLER))
    invocation = Invocation(
        "req-42",
        "ctx",
        {},
        int(time.time() * 1000) + 30_000,
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:ctx",
        context={
            "functionVersion": "7",
            "memoryLimitInMB": "256",
            "logGroupName": "/aws/lambda/ctx",
            "logStreamName": "2024/01/01/[7]abc",
            "identity": {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool"},
            "clientContext": {"client": {"app_title": "shop"}, "custom": {"k": "v"}},
        },
    )
    payload = invoker.invoke(invocation).payload
    remaining = payload.pop("remaining")
    assert 0 < remaining <= 30_000
    assert payload == {
        "name": "ctx",
        "version": "7",
        "arn": "arn:aws:lambda:eu-west-1:123456789012:function:ctx",
        "memory": 256,
        "request": "req-42",
        "group": "/aws/lambda/ctx",
        "stream": "2024/01/01/[7]abc",
        "identity": "id-1",
        "app": "shop",
        "custom": {"k": "v"},
    }


def test_remaining_time_follows_the_deadline(monkeypatch):
    now = [1_700_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    deadline_ms = int(now[0] * 1000) + 3_000
    context = LambdaContext(Invocation("r", "fn", {}, deadline_ms))
    assert context.get_remaining_time_in_millis() == 3_000
    now[0] += 1.25
    assert context.get_remaining_time_in_millis() == 1_750
    now[0] += 10
    assert context.get_remaining_time_in_millis() == 0
    assert context.identity.cognito_identity_id is None
    assert context.client_context is None


def test_done_callback_failure_does_not_lose_the_result(tmp_path, make_invoker):
    invoker = make_invoker(_function(tmp_path, "echo", ECHO))

    def broken(result: InvocationResult) -> None:
        raise RuntimeError("socket closed")

    assert invoker.submit(_invocation("echo", 3), broken).result(timeout=10).payload == 3


def test_invocation_repr_hides_environment_and_credentials():
    invocation = _invocation("fn", environment={"SECRET": "s3cr3t"}, credentials={"A": "key"})
    assert "s3cr3t" not in repr(invocation)
    assert "key" not in repr(invocation)


def test_with_a_ready_gate_invocations_wait_for_the_debugger_client(tmp_path):
    ready = threading.Event()
    function = _function(tmp_path, "echo", ECHO)
    invoker = LocalInvoker(FakeSources({"echo": function}), ready=ready)
    try:
        held = invoker.submit(_invocation("echo", 1), lambda result: None)
        time.sleep(0.2)
        assert not held.done()  # held until an IDE attaches
        ready.set()
        assert held.result(timeout=10).payload == 1
        ready.clear()
        late = _invocation("echo", 2, deadline_ms=int(time.time() * 1000) + 200)
        error = invoker.submit(late, lambda result: None).result(timeout=10).error
        assert error["errorType"] == "plldb.DebuggerNotAttached"
    finally:
        invoker.close()


def test_closing_ends_an_invocation_held_for_the_debugger_client_at_once(tmp_path):
    function = _function(tmp_path, "echo", ECHO)
    invoker = LocalInvoker(FakeSources({"echo": function}), ready=threading.Event())
    held = invoker.submit(_invocation("echo", 1), lambda result: None)  # deadline far off
    time.sleep(0.2)
    started = time.monotonic()
    invoker.close()
    assert time.monotonic() - started < 2
    assert held.result(timeout=5).error["errorType"] == "plldb.DebuggerNotAttached"
