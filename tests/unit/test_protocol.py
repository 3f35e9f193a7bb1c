"""The WebSocket messages: what each type must carry, and messages split into parts."""

from __future__ import annotations

import json
import random

import pytest

from plldb import protocol


def request(**overrides):
    message = protocol.request("req-1", "orders-api", {"id": 7}, 1_800_000_000_000)
    message.update(overrides)
    return message


@pytest.mark.parametrize(
    "message",
    [
        protocol.keepalive(),
        protocol.info("instrumented 1/1: orders-api"),
        protocol.error("unknown message type"),
        protocol.session_closed("taken over"),
        request(),
        request(event=None, credentials={"AWS_ACCESS_KEY_ID": "AKIA"}),
        protocol.response("req-1", None),
        protocol.response("req-1", [1, "two", {"three": 3}]),
        protocol.invocation_error("req-1", "KeyError", "'id'", ['  File "app.py", line 1\n']),
    ],
)
def test_valid_messages_round_trip(message):
    assert protocol.parse(protocol.encode(message)) == message


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        (request(requestId=7), "needs a string 'requestId'"),
        ({k: v for k, v in request().items() if k != "event"}, "needs a 'event' field"),
        (request(deadlineMs="soon"), "needs an integer 'deadlineMs'"),
        (request(deadlineMs=True), "needs an integer 'deadlineMs'"),
        (request(deadlineMs=-1), "needs an integer 'deadlineMs'"),
        (request(environment={"A": 1}), "'environment' to be an object of strings"),
        (request(context=[]), "'context' to be an object"),
        ({"type": "response", "requestId": "r"}, "needs a 'payload' field"),
        ({"type": "error", "requestId": "r", "errorType": "E"}, "needs a string 'errorMessage'"),
        (
            {**protocol.invocation_error("r", "E", "m"), "stackTrace": "line"},
            "'stackTrace' to be a list of strings",
        ),
        ({"type": "error"}, "needs a string 'message'"),
        ({"type": "part", "requestId": "r", "of": "response", "index": 2, "count": 2, "data": ""},
         "'index' beyond its 'count'"),
        ({"type": "part", "requestId": "r", "of": "info", "index": 0, "count": 1, "data": ""},
         "needs 'of' to be one of"),
        ({"type": "part", "requestId": "r", "of": "response", "index": 0, "count": 513,
          "data": ""}, "at most 512"),
    ],
)  # fmt: skip
def test_invalid_messages_say_what_is_wrong(message, needle):
    with pytest.raises(protocol.ProtocolError, match="message") as refused:
        protocol.parse(json.dumps(message))
    assert needle in str(refused.value)


def test_a_message_over_the_limit_is_refused_before_decoding():
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.parse("x" * (protocol.MAX_MESSAGE_BYTES + 1))


def test_a_small_message_is_one_frame():
    message = protocol.response("req-1", {"ok": True})
    assert protocol.frames(message) == [protocol.encode(message)]


def big_payload(size: int) -> list[float]:
    generator = random.Random(7)  # noqa: S311 - test data, poorly compressible
    return [generator.random() for _ in range(size // 19)]


@pytest.mark.parametrize("limit", [protocol.MAX_CLIENT_FRAME_BYTES, protocol.MAX_MESSAGE_BYTES])
def test_a_large_message_splits_into_parts_within_the_limit_and_joins_back(limit):
    message = protocol.response("req-1", big_payload(1_000_000))
    frames = protocol.frames(message, limit)
    assert len(frames) > 1
    assert all(len(frame.encode()) <= limit for frame in frames)
    parts = [protocol.parse(frame) for frame in frames]
    assert {part["type"] for part in parts} == {"part"}
    assert [part["index"] for part in parts] == list(range(len(parts)))
    assembler = protocol.Reassembler()
    results = [assembler.add(part) for part in reversed(parts)]  # any order
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == message


def test_only_invocation_messages_split():
    with pytest.raises(protocol.ProtocolError, match="cannot be split"):
        protocol.frames(protocol.info("x" * 200_000))


def test_parts_that_disagree_or_carry_garbage_are_refused():
    frames = protocol.frames(protocol.response("req-1", big_payload(300_000)), 32 * 1024)
    parts = [protocol.parse(frame) for frame in frames]
    assembler = protocol.Reassembler()
    assembler.add(parts[0])
    with pytest.raises(protocol.ProtocolError, match="disagree"):
        assembler.add({**parts[1], "count": parts[1]["count"] + 1})
    garbage = [{**part, "data": "!!!!"} for part in parts]
    with pytest.raises(protocol.ProtocolError, match="do not decode"):
        protocol.join(garbage)
    other = protocol.frames(protocol.response("req-2", big_payload(300_000)), 32 * 1024)
    swapped = [{**protocol.parse(frame), "requestId": "req-1"} for frame in other]
    with pytest.raises(protocol.ProtocolError, match="other than the one they announce"):
        protocol.join(swapped)


def test_the_reassembler_keeps_a_bounded_number_of_unfinished_messages():
    assembler = protocol.Reassembler(max_pending=2)
    for request_id in ("a", "b", "c"):
        frames = protocol.frames(protocol.response(request_id, big_payload(100_000)), 32 * 1024)
        assert assembler.add(protocol.parse(frames[0])) is None
    assert len(assembler._pending) == 2


def test_an_invocation_error_becomes_lambdas_error_body():
    message = protocol.invocation_error("r", "ValueError", "bad", ["trace"])
    assert protocol.is_invocation_error(message)
    assert not protocol.is_invocation_error(protocol.error("backend problem"))
    assert protocol.lambda_error(message) == {
        "errorMessage": "bad",
        "errorType": "ValueError",
        "stackTrace": ["trace"],
    }
