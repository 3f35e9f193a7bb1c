"""attach --record end to end: a relayed invocation written, redacted, then replayed locally."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from plldb.recording.document import load
from tests.e2e.support import TARGET, start_attach, wait_for
from tests.e2e.test_relay_journey import invoke, wait_until_instrumented, wait_until_restored

pytestmark = pytest.mark.e2e

ACCESS_KEY = "AKIAQWERTYUIOPASDFGH"
CARD = "4111111111111111"
BEARER = "Bearer planted-bearer-token"


def _replay(project, path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plldb", "replay", str(path)],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=60,
    )


def test_a_relayed_invocation_is_recorded_redacted_and_replays(cloud, tmp_path):
    recordings = tmp_path / "recordings"
    attach = start_attach(
        cloud, "--function", "*-wrapped", "--record", str(recordings), "--redact", "$.card"
    )
    event = {
        "blob": "abc",
        "card": CARD,
        "headers": {"Authorization": BEARER},
        "note": f"made with {ACCESS_KEY}",
    }
    try:
        wait_until_instrumented(cloud, attach, ("wrapped",))
        answer = invoke(cloud, "wrapped", event)
        assert answer == {"payload": {"ran": "locally", "size": 3}, "error": None}
        # written just after the answer went back to the caller
        assert wait_for(lambda: list(recordings.glob("*.json")))
    finally:
        assert attach.stop() == 130
    wait_until_restored(cloud)

    (path,) = recordings.glob("*.json")
    text = path.read_text()
    for secret in (ACCESS_KEY, CARD, "planted-bearer"):
        assert secret not in text, secret
    recording = load(path)
    assert recording.function_name == f"{TARGET}-wrapped"
    assert recording.logical_id == "WrappedFunction"
    assert recording.response == {"ran": "locally", "size": 3}
    assert recording.event["blob"] == "abc" and recording.event["card"] == "[redacted]"
    assert "CALLBACK_URL" in recording.document["environmentVariables"]
    assert "execute-api" not in text  # the variable's value stays out of the file
    assert path.name.endswith(f"-{TARGET}-wrapped-{recording.request_id[:8]}.json")

    project = tmp_path / "project"
    shutil.copytree(cloud.project, project)
    done = _replay(project, path)
    assert done.returncode == 0, done.stdout + done.stderr
    handler = project / "src" / "wrapped.py"
    handler.write_text(handler.read_text().replace('"ran": "locally"', '"ran": "changed"'))
    done = _replay(project, path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert '-    "ran": "locally"' in done.stdout and '+    "ran": "changed"' in done.stdout
