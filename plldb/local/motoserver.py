"""moto in server mode on 127.0.0.1, reached by plldb through AWS_ENDPOINT_URL like any endpoint."""

from __future__ import annotations

import contextlib
import logging
import socket
import urllib.request

from plldb.local.service import Service


class MotoServer(Service):
    """Starts moto's threaded server on a free loopback port; usable as a context manager."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._requested_port = port
        self.port = 0

    @property
    def endpoint(self) -> str:
        # "localhost", not 127.0.0.1: moto reads a TemplateURL as path-style only for that host.
        return f"http://localhost:{self.port}"

    def start(self) -> MotoServer:
        if self._requested_port:
            # moto binds inside its thread, where a failure would leave start() waiting forever.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", self._requested_port))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        import threading

        # moto's server checks for shutdown only every 0.5 s, or when a connection wakes it.
        stopping = threading.Thread(target=self._server.stop, daemon=True)
        stopping.start()
        while stopping.is_alive():
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                pass
            stopping.join(timeout=0.02)

    def reset(self) -> None:
        """Forget every resource, as a new account would look."""
        url = f"{self.endpoint}/moto-api/reset"  # always http://localhost: the server we run
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def environment(self, region: str = "eu-west-1") -> dict[str, str]:
        """The standard AWS variables that point boto3 (and so plldb) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
