"""`inv demo`, the README's main command, as a user runs it: exits 0 and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


# What the demo starts: the attach CLI, the Lambda runtimes and their relay, moto.
_OURS = ("plldb", "awslambdaric", "plldb_relay", "moto", "invoke")


def _processes() -> dict[int, str]:
    """Every live process of ours on this machine: pid -> command line."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = entry.read_bytes().replace(b"\0", b" ").decode().strip()
            state = (entry.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        # Only this interpreter's: another checkout's tests may run at the same time (and a
        # venv at /work/venv-2 must not count as /work/venv's).
        ours = os.path.join(sys.prefix, "") in cmdline
        if state != "Z" and ours and any(word in cmdline for word in _OURS):
            found[int(entry.parent.name)] = cmdline
    return found


def test_inv_demo_runs_the_whole_journey_and_leaves_no_process(tmp_path):
    before = _processes()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLLDB_"))}
    env["AWS_CONFIG_FILE"] = str(tmp_path / "none")  # nothing of the developer's AWS setup
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    demo = subprocess.Popen(
        [sys.executable, "-m", "invoke", "demo"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,  # no prompt: nothing is read
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = demo.communicate(timeout=300)
    assert demo.returncode == 0, output
    noisy = [line for line in output.splitlines() if "Traceback" in line or "arning" in line]
    assert noisy == [], output  # no traceback, Warning or warning: the demo tells its own story
    assert "not served" not in output and "Error" not in output, output
    assert len(output.splitlines()) <= 40, output
    assert "[8/8]" in output
    assert "the local handler printed: http-api: created session" in output
    assert 'the caller received: {"statusCode": 201' in output
    assert "qr-upload-http-api-dev: timeout 30 s, layers 0, no plldb variables" in output
    assert "the caller received status 400" in output
    # The recorded bad request, replayed by plldb's pytest plugin, gives the recorded answer.
    assert "pytest test_recorded_bad_request.py: 1 passed" in output
    left = {pid: cmd for pid, cmd in _processes().items() if pid not in before}
    assert left == {}


def test_inv_demo_without_the_local_extra_says_what_to_install(tmp_path):
    # `moto` set to None in sys.modules: every import of it fails, as if it were not installed.
    run_inv_demo = (
        "import sys; sys.modules['moto'] = None; sys.argv = ['inv', 'demo']; "
        "from invoke.main import program; program.run()"
    )
    done = subprocess.run(
        [sys.executable, "-c", run_inv_demo],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines == [
        "plldb demo: error: the offline cloud needs moto, from the `local` extra: "
        'pip install -e ".[local]" in a checkout (or the dev extra), '
        "pip install 'plldb[local]' otherwise"
    ]
