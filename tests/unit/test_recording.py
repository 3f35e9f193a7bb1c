"""The recording file: its name, its stable text, and the invoker's hook that writes it."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from plldb.attach.invocation import Invocation, InvocationResult, Ran
from plldb.attach.invoker import LocalInvoker
from plldb.attach.local_source import LocalFunction
from plldb.recording.document import RecordingError, build, dumps, file_name, load
from plldb.recording.recorder import DirectoryRecorder
from tests.unit.test_invoker import FakeSources

STARTED = 1796317501.1234  # 2026-12-03T17:05:01.123Z


def _ran(payload=None, error=None, request_id="5f0c3a1e-aaaa", started=STARTED) -> Ran:
    invocation = Invocation(
        request_id,
        "qr-upload-http-api-dev",
        {"b": 2, "a": 1},
        int(started * 1000) + 29_500,
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:f",
        environment={"ZED": "1", "ALPHA": "2"},
        context={"memoryLimitInMB": "256", "logGroupName": "/aws/lambda/f"},
    )
    function = LocalFunction(invocation.function_name, "HttpApiLambda", Path("src"), "app.h")
    result = InvocationResult(request_id, payload=payload, error=error)
    return Ran(invocation, function, result, started, 12.34567)


def test_the_file_is_named_to_sort_by_time():
    assert file_name(_ran()) == "20261203T170501.123Z-qr-upload-http-api-dev-5f0c3a1e.json"
    later = file_name(_ran(started=STARTED + 0.01))
    assert sorted([later, file_name(_ran())])[0] == file_name(_ran())


def test_the_document_holds_what_replay_and_a_reader_need():
    document = build(_ran(payload={"ok": True}))
    assert document["function"] == {
        "name": "qr-upload-http-api-dev",
        "logicalId": "HttpApiLambda",
        "handler": "app.h",
    }
    assert document["timestamp"] == "2026-12-03T17:05:01.123Z"
    assert document["durationMs"] == 12.346
    assert document["event"] == {"a": 1, "b": 2}
    assert document["response"] == {"ok": True} and "error" not in document
    assert document["environmentVariables"] == ["ALPHA", "ZED"]  # names, never values
    context = document["context"]
    assert context["timeoutMs"] == 29_500
    assert context["awsRequestId"] == "5f0c3a1e-aaaa"
    assert context["memoryLimitInMB"] == "256"
    assert context["invokedFunctionArn"].endswith(":function:f")


def test_the_text_is_stable_sorted_and_indented():
    text = dumps(build(_ran(payload={"z": 1, "a": [1, 2]})))
    assert text == dumps(build(_ran(payload={"a": [1, 2], "z": 1})))
    assert text.endswith("}\n") and '\n  "context": {' in text
    keys = list(json.loads(text))
    assert keys == sorted(keys)


def test_an_error_is_kept_with_its_traceback(tmp_path):
    error = {"errorType": "KeyError", "errorMessage": "'x'", "stackTrace": ["  File a.py\n"]}
    path = DirectoryRecorder(tmp_path).record(_ran(error=error))
    recording = load(path)
    assert recording.failed and recording.error == error and recording.response is None


def test_two_invocations_in_one_millisecond_get_two_files(tmp_path):
    recorder = DirectoryRecorder(tmp_path / "new" / "dir")
    first, second = recorder.record(_ran(payload=1)), recorder.record(_ran(payload=2))
    assert first != second
    assert [load(first).response, load(second).response] == [1, 2]


@pytest.mark.parametrize(
    "content", ["not json", "[]", '{"format": "other"}', '{"format": "plldb-recording/1"}']
)
def test_a_file_that_is_not_a_recording_is_refused(tmp_path, content):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(RecordingError):
        load(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(RecordingError):
        load(tmp_path / "missing.json")


def test_the_invoker_records_what_it_ran_after_answering(tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(
        textwrap.dedent(
            """
            def handler(event, context):
                if event.get("fail"):
                    raise ValueError("asked to fail")
                return {"echo": event, "left": context.get_remaining_time_in_millis() > 0}
            """
        )
    )
    function = LocalFunction("fn", "Fn", code, "app.handler")
    recorder = DirectoryRecorder(tmp_path / "recordings")
    deadline = int(time.time() * 1000) + 60_000
    with LocalInvoker(FakeSources({"fn": function}), recorder=recorder) as invoker:
        invoker.invoke(Invocation("req-1", "fn", {"n": 1}, deadline, environment={"K": "v"}))
        answered = []
        future = invoker.submit(
            Invocation("req-2", "fn", {"fail": True}, deadline), answered.append
        )
        future.result(timeout=30)
        invoker.invoke(Invocation("req-3", "missing", {}, deadline))  # no source: nothing ran
    recordings = sorted((tmp_path / "recordings").iterdir())
    assert len(recordings) == 2 and answered[0].error is not None
    ok, failed = (load(path) for path in recordings)
    assert ok.response == {"echo": {"n": 1}, "left": True}
    assert ok.document["environmentVariables"] == ["K"] and ok.logical_id == "Fn"
    assert failed.error["errorType"] == "ValueError"
    assert any("asked to fail" in line or "raise" in line for line in failed.error["stackTrace"])


def test_a_failing_recorder_does_not_fail_the_invocation(tmp_path):
    class Broken:
        def record(self, ran):
            raise OSError("disk full")

    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return 7\n")
    sources = FakeSources({"fn": LocalFunction("fn", "Fn", code, "app.handler")})
    with LocalInvoker(sources, recorder=Broken()) as invoker:
        result = invoker.invoke(Invocation("r", "fn", {}, int(time.time() * 1000) + 9000))
    assert result.payload == 7
