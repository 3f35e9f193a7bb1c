"""The CLI's side of the relay: requests (whole or in parts) run locally, answers sent back."""

from __future__ import annotations

from typing import Any

from plldb import protocol
from plldb.attach.connection import Listener
from plldb.attach.dispatch import RelayListener, invocation_from
from plldb.attach.invocation import Invocation, InvocationResult


class Recorder(Listener):
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.malformed_messages: list[str] = []
        self.notices: list[str] = []

    def message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def malformed(self, raw: str | bytes, problem: str) -> None:
        self.malformed_messages.append(problem)

    def notice(self, text: str) -> None:
        self.notices.append(text)


class EchoInvoker:
    """Answers at once, in the caller's thread: the event back, or an error for 'fail'."""

    def __init__(self) -> None:
        self.invocations: list[Invocation] = []

    def submit(self, invocation: Invocation, done: Any) -> None:
        self.invocations.append(invocation)
        if invocation.event == "fail":
            error = {"errorType": "ValueError", "errorMessage": "no", "stackTrace": ["here"]}
            done(InvocationResult(invocation.request_id, error=error))
        else:
            done(InvocationResult(invocation.request_id, payload={"echo": invocation.event}))


def relay(send_ok: bool = True) -> tuple[RelayListener, Recorder, EchoInvoker, list[str]]:
    sent: list[str] = []

    def send(text: str) -> bool:
        sent.append(text)
        return send_ok

    recorder, invoker = Recorder(), EchoInvoker()
    return RelayListener(recorder, invoker, send), recorder, invoker, sent


def request(event: Any = None, request_id: str = "req-1") -> dict[str, Any]:
    return protocol.request(
        request_id,
        "orders-api",
        {"id": 7} if event is None else event,
        1_800_000_000_000,
        environment={"TABLE": "orders"},
        context={"invokedFunctionArn": "arn:aws:lambda:eu-west-1:1:function:orders-api"},
    )


def test_a_request_becomes_an_invocation():
    invocation = invocation_from(request())
    assert invocation.request_id == "req-1" and invocation.function_name == "orders-api"
    assert invocation.event == {"id": 7} and invocation.deadline_ms == 1_800_000_000_000
    assert invocation.invoked_function_arn.endswith(":function:orders-api")
    assert invocation.environment == {"TABLE": "orders"} and invocation.credentials is None
    assert "invokedFunctionArn" not in invocation.context


def test_a_request_is_run_and_answered():
    listener, recorder, _, sent = relay()
    listener.message(request())
    assert [protocol.parse(text) for text in sent] == [
        protocol.response("req-1", {"echo": {"id": 7}})
    ]
    assert recorder.notices[0] == "invoked orders-api req-1"
    assert recorder.notices[1].startswith("answered orders-api req-1 in ")


def test_a_failure_is_answered_with_lambdas_error_shape():
    listener, recorder, _, sent = relay()
    listener.message(request("fail"))
    (answer,) = [protocol.parse(text) for text in sent]
    assert answer == protocol.invocation_error("req-1", "ValueError", "no", ["here"])
    assert recorder.notices[-1].startswith("failed (ValueError) orders-api req-1")


def test_a_request_in_parts_is_run_once_whole_and_a_large_answer_goes_in_client_frames():
    listener, _, invoker, sent = relay()
    event = {"blob": [f"{n:08x}" for n in range(60_000)]}
    parts = [protocol.parse(frame) for frame in protocol.frames(request(event), 32 * 1024)]
    assert len(parts) > 1
    for part in parts:
        listener.message(part)
    assert len(invoker.invocations) == 1 and invoker.invocations[0].event == event
    assert len(sent) > 1
    assert all(len(text) <= protocol.MAX_CLIENT_FRAME_BYTES for text in sent)
    reassembler = protocol.Reassembler()
    answers = [reassembler.add(protocol.parse(text)) for text in sent]
    assert answers[-1] == protocol.response("req-1", {"echo": event})


def test_other_messages_pass_through_and_foreign_ones_are_ignored_with_a_reason():
    listener, recorder, invoker, sent = relay()
    listener.message(protocol.info("instrumented 1/1: orders-api"))
    listener.message(protocol.response("req-9", "not for the CLI"))
    listener.message(protocol.invocation_error("req-9", "E", "not for the CLI either"))
    bad_part = {"type": "part", "requestId": "r", "of": "request", "index": 0, "count": 1}
    listener.message({**bad_part, "data": "!!!"})
    assert recorder.messages == [protocol.info("instrumented 1/1: orders-api")]
    assert len(recorder.malformed_messages) == 3
    assert "not for the CLI" in recorder.malformed_messages[0]
    assert "do not decode" in recorder.malformed_messages[2]
    assert invoker.invocations == [] and sent == []


def test_an_answer_without_a_connection_is_dropped_after_the_first_frame(caplog):
    listener, _, _, sent = relay(send_ok=False)
    listener.message(request({"blob": [f"{n:08x}" for n in range(60_000)]}))
    assert len(sent) == 1
    assert "not delivered" in caplog.text


def test_credentials_are_used_only_when_the_developer_asked_for_the_function_role():
    message = {**request(), "credentials": {"AWS_ACCESS_KEY_ID": "AKIAROLE"}}
    assert invocation_from(message).credentials is None
    assert invocation_from(message, function_role=True).credentials == {
        "AWS_ACCESS_KEY_ID": "AKIAROLE"
    }
    sent: list[str] = []
    invoker = EchoInvoker()
    RelayListener(Recorder(), invoker, sent.append, function_role=True).message(message)
    assert invoker.invocations[0].credentials == {"AWS_ACCESS_KEY_ID": "AKIAROLE"}
