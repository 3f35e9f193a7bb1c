"""`plldb local up` twice: the second refuses in one line naming the first; a dead one is no bar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def _up(env):
    return subprocess.Popen(
        [sys.executable, "-m", "plldb", "local", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _exports(process) -> dict[str, str]:
    lines = [process.stdout.readline().strip() for _ in range(7)]
    return dict(line.removeprefix("export ").split("=", 1) for line in lines)


def test_a_second_local_up_names_the_running_one_and_a_killed_one_leaves_no_bar(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")  # this user's state, kept to the test
    env["TMPDIR"] = str(tmp_path)
    first = _up(env)
    try:
        moto = _exports(first)["AWS_ENDPOINT_URL"]
        second = subprocess.run(
            [sys.executable, "-m", "plldb", "local", "up"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert second.returncode != 0
        assert second.stdout == ""
        (line,) = [line for line in second.stderr.splitlines() if line.strip()]
        assert line.startswith("plldb: error: an offline cloud is already running at "), line
        assert moto in line and f"pid {first.pid}" in line

        first.send_signal(signal.SIGKILL)  # no clean-up at all: the lock goes with the process
        first.wait(timeout=30)
        third = _up(env)
        try:
            assert _exports(third)["AWS_ENDPOINT_URL"].startswith("http://localhost:")
            third.send_signal(signal.SIGTERM)
            assert third.wait(timeout=30) == 0
        finally:
            if third.poll() is None:
                third.kill()
    finally:
        if first.poll() is None:
            first.kill()
