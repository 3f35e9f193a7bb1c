"""A small Debug Adapter Protocol client: what an IDE says to debugpy, over its socket."""

from __future__ import annotations

import json
import queue
import socket
import threading
from typing import Any


class DapClient:
    """Sends requests, matches their responses, and queues the events debugpy sends."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._socket = socket.create_connection((host, port), timeout=timeout)
        self._file = self._socket.makefile("rb")
        self._seq = 0
        self._lock = threading.Lock()
        self.responses: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                length = 0
                while True:
                    line = self._file.readline()
                    if not line:
                        return
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                message = json.loads(self._file.read(length))
                if message.get("type") == "response":
                    self.responses.setdefault(message["request_seq"], queue.Queue()).put(message)
                elif message.get("type") == "event":
                    self.events.put(message)
        except (OSError, ValueError):
            return

    def send(self, command: str, **arguments: Any) -> int:
        with self._lock:
            self._seq += 1
            seq = self._seq
            self.responses.setdefault(seq, queue.Queue())
            body = json.dumps(
                {"seq": seq, "type": "request", "command": command, "arguments": arguments}
            ).encode()
            self._socket.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return seq

    def response(self, seq: int) -> dict[str, Any]:
        answer = self.responses[seq].get(timeout=self.timeout)
        if not answer.get("success"):
            raise AssertionError(f"{answer.get('command')} failed: {answer.get('message')}")
        return answer

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        return self.response(self.send(command, **arguments))

    def event(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """The next event of that name; others before it are skipped."""
        while True:
            event = self.events.get(timeout=timeout or self.timeout)
            if event.get("event") == name:
                return event

    def close(self) -> None:
        try:
            self._socket.close()
        except OSError:
            return
