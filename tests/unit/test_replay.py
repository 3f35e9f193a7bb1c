"""plldb replay and the pytest plugin: same handler passes, a changed one fails with a diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from plldb.attach.invocation import Invocation
from plldb.attach.invoker import LocalInvoker
from plldb.attach.local_source import SourceMap
from plldb.recording.document import load
from plldb.recording.recorder import DirectoryRecorder
from plldb.recording.redact import redactions
from plldb.recording.replay import invocation_for

FUNCTION = "shop-orders-dev"
HANDLER = """
def handler(event, context):
    if event.get("fail"):
        raise ValueError("no such order")
    return {"order": event["order"], "total": 42, "key": "AKIAABCDEFGHIJKLMNOP"}
"""


def _project(root: Path, handler: str = HANDLER) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "app.py").write_text(textwrap.dedent(handler))
    (root / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  OrdersFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {Handler: app.handler, CodeUri: src, Runtime: python3.12}\n"
    )
    return root


def _record(project: Path, *events: dict, rules: tuple[str, ...] = ()) -> Path:
    """Run `events` through the invoker with a recorder, as attach --record does."""
    sources = SourceMap(project / "template.yaml", {FUNCTION: ("OrdersFunction",)})
    recordings = project / "recordings"
    recorder = DirectoryRecorder(recordings, redactions(rules))
    with LocalInvoker(sources, recorder=recorder) as invoker:
        for number, event in enumerate(events):
            deadline = int(time.time() * 1000) + 6000
            invoker.invoke(Invocation(f"req-{number:04d}", FUNCTION, event, deadline))
    return recordings


def _plldb(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plldb", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def project(tmp_path):
    return _project(tmp_path / "project")


def test_the_same_handler_replays_to_the_recorded_answers(project):
    recordings = _record(project, {"order": 1}, {"fail": True}, {"order": 2, "pin": "1234"})
    done = _plldb(project, "replay", str(recordings))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("same: ") == 3 and "different" not in done.stdout


def test_a_changed_handler_fails_with_a_diff(project):
    recordings = _record(project, {"order": 1})
    _project(project, HANDLER.replace('"total": 42', '"total": 43'))
    done = _plldb(project, "replay", str(recordings))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "different: " in done.stdout
    assert "(recorded)\n+++ replayed\n" in done.stdout
    assert '-    "total": 42' in done.stdout and '+    "total": 43' in done.stdout


def test_a_handler_that_now_fails_shows_its_error_in_the_diff(project):
    recordings = _record(project, {"order": 1})
    _project(project, "def handler(event, context):\n    raise KeyError('gone')\n")
    done = _plldb(project, "replay", str(recordings))
    assert done.returncode == 1
    assert '+    "errorType": "KeyError"' in done.stdout


def test_no_compare_prints_the_answer_and_passes(project):
    recordings = _record(project, {"order": 1})
    _project(project, HANDLER.replace('"total": 42', '"total": 43'))
    done = _plldb(project, "replay", str(recordings), "--no-compare")
    assert done.returncode == 0
    assert '"total": 43' in done.stdout


def test_function_globs_choose_the_recordings(project):
    recordings = _record(project, {"order": 1})
    assert _plldb(project, "replay", str(recordings), "-f", "Orders*").returncode == 0
    assert _plldb(project, "replay", str(recordings), "-f", "shop-*").returncode == 0


def _one_error_line(done: subprocess.CompletedProcess, code: int = 2) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plldb: error: "), done.stderr
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(project):
    recordings = _record(project, {"order": 1})
    (project / "notes.json").write_text('{"hello": 1}')
    _one_error_line(_plldb(project, "replay", str(project / "missing.json")))
    _one_error_line(_plldb(project, "replay", str(project / "notes.json")))
    _one_error_line(_plldb(project, "replay", str(project / "template.yaml")))
    _one_error_line(_plldb(project, "replay", str(recordings), "-f", "nothing*"))
    # a usage error, exit 1 like every other command's
    assert "replay needs 'path'" in _one_error_line(_plldb(project, "replay"), code=1)
    empty = project / "empty"
    empty.mkdir()
    _one_error_line(_plldb(project, "replay", str(empty)))


def test_a_function_the_template_lacks_is_bad_input(project):
    recordings = _record(project, {"order": 1})
    (project / "template.yaml").write_text("Resources: {}\n")
    line = _one_error_line(_plldb(project, "replay", str(recordings)))
    assert "OrdersFunction" in line


def test_redacted_values_compare_equal_to_what_the_handler_gives_again(project):
    recordings = _record(project, {"order": 1, "card": "4111"}, rules=("$.card", "re:411+"))
    (path,) = recordings.iterdir()
    recording = load(path)
    assert recording.event["card"] == "[redacted]"
    assert recording.response["key"] == "[redacted]"  # an access key id in the answer
    assert _plldb(project, "replay", str(path)).returncode == 0


def test_the_context_counts_down_from_the_recorded_time_left(project):
    recordings = _record(project, {"order": 1})
    (path,) = recordings.iterdir()
    recording = load(path)
    assert 0 < recording.timeout_ms <= 6000
    invocation = invocation_for(recording, now_ms=1_000_000)
    assert invocation.deadline_ms == 1_000_000 + recording.timeout_ms
    assert invocation.request_id == "req-0000" and invocation.event == {"order": 1}


def test_replay_help_is_the_commands_help(project):
    done = _plldb(project, "replay", "--help")
    assert done.returncode == 0 and "--no-compare" in done.stdout


PLUGIN_TEST = """
import pytest
from plldb.testing import load_recording, recordings


@pytest.mark.parametrize("recording", recordings("../recordings"))
def test_replayed(plldb_replay, recording):
    assert plldb_replay(recording) == load_recording(recording).response
"""


def _pytest(directory: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)],
        capture_output=True,
        text=True,
        cwd=directory,
        env=env,
        timeout=120,
    )


def test_the_pytest_plugin_replays_recordings_as_tests(project):
    _record(project, {"order": 1}, {"order": 2})
    tests = project / "tests"
    tests.mkdir()
    (tests / "test_recorded.py").write_text(PLUGIN_TEST)
    done = _pytest(tests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    _project(project, HANDLER.replace('"total": 42', '"total": 43'))
    done = _pytest(tests)
    assert done.returncode == 1 and "2 failed" in done.stdout, done.stdout


def test_the_fixture_raises_the_handlers_error(project):
    recordings = _record(project, {"fail": True})
    tests = project / "tests"
    tests.mkdir()
    (tests / "test_recorded.py").write_text(
        "import pytest\nfrom plldb.testing import HandlerFailed\n\n"
        "def test_fails(plldb_replay):\n"
        f"    with pytest.raises(HandlerFailed, match='no such order'):\n"
        f"        plldb_replay({json.dumps(str(next(recordings.iterdir())))})\n"
    )
    done = _pytest(tests)
    assert done.returncode == 0, done.stdout + done.stderr
