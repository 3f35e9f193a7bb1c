"""moto in server mode on 127.0.0.1, reached by plldb through AWS_ENDPOINT_URL like any endpoint."""

from __future__ import annotations

import contextlib
import logging
import socket
import urllib.request
from typing import Any

from plldb.local.iam import hook, propagation, simulation
from plldb.local.iam.admin import create_admin
from plldb.local.service import Service

DUMMY_KEY = "testing"  # moto's dummy credentials: any signature passes while IAM is lenient
ACCOUNT_ID = "123456789012"  # moto's default account


class MotoServer(Service):
    """Starts moto's threaded server on a free loopback port; usable as a context manager.

    With `enforce_iam`, every request must be signed by a known key (the admin user's, created
    at each reset, or any IAM user's or STS session's) and allowed by its identity policies.
    """

    def __init__(
        self,
        port: int = 0,
        enforce_iam: bool = False,
        region: str = "eu-west-1",
        iam_propagation_seconds: float = 0.0,
    ) -> None:
        """`iam_propagation_seconds`: with enforcement, a policy attached or put through IAM
        takes effect that long after the call (plldb/local/iam/propagation.py)."""
        self._server = _server(port, enforce_iam)
        self.iam_propagation_seconds = iam_propagation_seconds
        self._requested_port = port
        self.enforce_iam = enforce_iam
        self.region = region
        self.port = 0
        self.access_key, self.secret_key = DUMMY_KEY, DUMMY_KEY

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
        if self.enforce_iam:
            hook.install()
            propagation.configure(self.iam_propagation_seconds)
        simulation.install(strict=self.enforce_iam)
        try:
            self._server.start()
        except BaseException:
            simulation.uninstall()
            if self.enforce_iam:
                hook.uninstall()
            raise
        self.port = self._server.get_host_and_port()[1]
        if self.enforce_iam:
            self._create_admin()
        return self

    def stop(self) -> None:
        import threading

        try:
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
        finally:
            simulation.uninstall()
            if self.enforce_iam:
                propagation.configure(0)
                hook.uninstall()

    def reset(self) -> None:
        """Forget every resource, as a new account would look."""
        url = f"{self.endpoint}/moto-api/reset"  # always http://localhost: the server we run
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass
        if self.enforce_iam:
            propagation.configure(self.iam_propagation_seconds)  # nothing pending any more
            self._create_admin()  # the reset removed it with every other user

    def _create_admin(self) -> None:
        self.access_key, self.secret_key = create_admin(ACCOUNT_ID, self.region)

    def environment(self, region: str = "eu-west-1") -> dict[str, str]:
        """The standard AWS variables that point boto3 (and so plldb) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def _server(port: int, enforce_iam: bool) -> Any:
    from moto.server import ThreadedMotoServer

    class Server(ThreadedMotoServer):
        """moto's threaded server, except that a failure to start is raised by start().

        moto builds its WSGI app and binds inside its own thread; if that thread dies,
        moto's start() waits for a ready event forever.
        """

        startup_error: BaseException | None = None

        def _server_entry(self) -> None:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server

            try:
                app = DomainDispatcherApplication(create_backend_app)
                if enforce_iam:  # the check needs each request's bytes
                    app = hook.capture_requests(app)
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
                )
            except BaseException as error:
                self.startup_error = error
                self._server_ready_event.set()
                return
            self._server_ready_event.set()
            self._server.serve_forever()

        def start(self) -> None:
            super().start()
            if self.startup_error is not None:
                raise RuntimeError(
                    f"moto's server did not start: {self.startup_error}"
                ) from self.startup_error

    return Server(ip_address="127.0.0.1", port=port, verbose=False)
