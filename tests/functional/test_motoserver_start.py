"""moto's server thread can die before it listens; start() must say so, not wait forever."""

from __future__ import annotations

import threading

import pytest

from plldb.local.motoserver import MotoServer


@pytest.mark.parametrize("enforce_iam", [False, True])
def test_a_server_that_cannot_build_its_app_fails_start_with_the_cause(monkeypatch, enforce_iam):
    import werkzeug.serving

    def broken(*args, **kwargs):
        raise TypeError("make_server() got an unexpected keyword argument 'request_handler'")

    monkeypatch.setattr(werkzeug.serving, "make_server", broken)
    server = MotoServer(enforce_iam=enforce_iam)
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as error:
            outcome.append(error)

    starting = threading.Thread(target=start, daemon=True)
    starting.start()
    starting.join(timeout=20)
    assert not starting.is_alive(), "start() still waiting for a server thread that died"
    (error,) = outcome
    assert "moto's server did not start" in str(error)
    assert "request_handler" in str(error)
