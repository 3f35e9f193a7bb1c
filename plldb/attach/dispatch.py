"""Relayed invocations on the CLI: reassemble, run locally, answer; other messages pass through."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from plldb import protocol
from plldb.attach.connection import Listener
from plldb.attach.invocation import Invocation, InvocationResult

log = logging.getLogger(__name__)


class Invoker(Protocol):
    def submit(self, invocation: Invocation, done: Callable[[InvocationResult], None]) -> Any: ...


def invocation_from(message: dict[str, Any], function_role: bool = False) -> Invocation:
    """The Invocation a validated request message describes.

    Credentials in the message are used only when the developer asked for the function role's
    (`attach --function-role`); otherwise the developer's own apply.
    """
    context = dict(message.get("context") or {})
    return Invocation(
        request_id=message["requestId"],
        function_name=message["functionName"],
        event=message["event"],
        deadline_ms=message["deadlineMs"],
        invoked_function_arn=str(context.pop("invokedFunctionArn", "") or ""),
        environment=dict(message.get("environment") or {}),
        context=context,
        credentials=(message.get("credentials") or None) if function_role else None,
    )


def answer_message(result: InvocationResult) -> dict[str, Any]:
    if result.error is not None:
        return protocol.invocation_error(
            result.request_id,
            str(result.error.get("errorType", "Error")),
            str(result.error.get("errorMessage", "")),
            [str(line) for line in result.error.get("stackTrace", [])],
        )
    return protocol.response(result.request_id, result.payload)


class RelayListener(Listener):
    """Takes the requests (whole or in parts) off the connection; the rest goes to `inner`."""

    def __init__(
        self,
        inner: Listener,
        invoker: Invoker,
        send: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
        function_role: bool = False,
    ) -> None:
        self.inner = inner
        self.function_role = function_role
        self.invoker = invoker
        self.send = send
        self.clock = clock
        self._parts = protocol.Reassembler()

    def message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == protocol.PART:
            try:
                whole = self._parts.add(message)
            except protocol.ProtocolError as problem:
                self.inner.malformed(protocol.encode(message), str(problem))
                return
            if whole is None:
                return
            message, kind = whole, whole["type"]
        if kind == protocol.REQUEST:
            self._start(message)
        elif kind == protocol.RESPONSE or protocol.is_invocation_error(message):
            problem = f"{kind} messages are not for the CLI"
            self.inner.malformed(protocol.encode(message)[:200], problem)
        else:
            self.inner.message(message)

    def malformed(self, raw: str | bytes, problem: str) -> None:
        self.inner.malformed(raw, problem)

    def notice(self, text: str) -> None:
        self.inner.notice(text)

    def _start(self, message: dict[str, Any]) -> None:
        invocation = invocation_from(message, self.function_role)
        started = self.clock()
        label = f"{invocation.function_name} {invocation.request_id[:8]}"
        self.inner.notice(f"invoked {label}")

        def done(result: InvocationResult) -> None:
            elapsed = (self.clock() - started) * 1000
            outcome = (
                "answered" if result.error is None else f"failed ({result.error['errorType']})"
            )
            self._answer(result)
            self.inner.notice(f"{outcome} {label} in {elapsed:.0f} ms")

        self.invoker.submit(invocation, done)

    def _answer(self, result: InvocationResult) -> None:
        message = answer_message(result)
        try:
            frames = protocol.frames(message, protocol.MAX_CLIENT_FRAME_BYTES)
        except protocol.ProtocolError as problem:
            frames = protocol.frames(
                protocol.invocation_error(result.request_id, "plldb.ResponseTooLarge", str(problem))
            )
        for frame in frames:
            if not self.send(frame):
                log.warning("the answer to %s was not delivered: no connection", result.request_id)
                return
