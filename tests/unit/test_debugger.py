"""debugpy settings of attach: the port check, the launch configuration, .vscode/launch.json."""

from __future__ import annotations

import json
import os
import socket
import sys

import pytest

from plldb.attach.debugger import (
    LAUNCH_NAME,
    DebuggerError,
    DebugpySettings,
    DebugServer,
    check_port,
    launch_configuration,
    load_debugpy,
    write_vscode_launch,
)


def test_a_port_in_use_is_refused_with_the_flag_to_change():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DebuggerError, match=f"--debugpy-port {port} on 127.0.0.1 is already"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again
    with pytest.raises(DebuggerError, match="not a TCP port"):
        check_port("127.0.0.1", 70000)


def test_without_debugpy_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "debugpy", None)  # import fails as if not installed
    with pytest.raises(DebuggerError, match=r"pip install 'plldb\[debug\]'"):
        load_debugpy()


def test_the_launch_configuration_attaches_to_the_server():
    configuration = launch_configuration(DebugpySettings("127.0.0.1", 5700))
    assert configuration["request"] == "attach" and configuration["type"] == "debugpy"
    assert configuration["connect"] == {"host": "127.0.0.1", "port": 5700}
    assert configuration["name"] == LAUNCH_NAME


def test_launch_json_is_created_then_updated_in_place_keeping_other_configurations(tmp_path):
    first = launch_configuration(DebugpySettings(port=5678))
    said = write_vscode_launch(tmp_path, first)
    path = tmp_path / ".vscode" / "launch.json"
    assert said == f"launch configuration {LAUNCH_NAME!r} written to {path}"
    launch = json.loads(path.read_text())
    launch["configurations"].insert(0, {"name": "mine", "type": "debugpy", "request": "launch"})
    path.write_text(json.dumps(launch))
    second = launch_configuration(DebugpySettings(port=5679))
    assert "updated" in write_vscode_launch(tmp_path, second)
    configurations = json.loads(path.read_text())["configurations"]
    assert [c["name"] for c in configurations] == ["mine", LAUNCH_NAME]
    assert configurations[1]["connect"]["port"] == 5679


@pytest.mark.parametrize(
    "content", ['// no list\n{"version": "0.2.0",}', "{not json", '{"configurations": 3}', "[1, 2"]
)
def test_a_launch_json_plldb_cannot_read_is_left_untouched_and_said_so(tmp_path, content):
    path = tmp_path / ".vscode" / "launch.json"
    path.parent.mkdir()
    path.write_text(content)
    said = write_vscode_launch(tmp_path, launch_configuration(DebugpySettings()))
    assert "left untouched" in said and str(path) in said
    assert path.read_text() == content


class FakeDebugpy:
    def __init__(self) -> None:
        self.listening: tuple[str, int] | None = None
        self.client = __import__("threading").Event()

    def listen(self, address: tuple[str, int]) -> None:
        self.listening = address

    def trace_this_thread(self, should_trace: bool) -> None:
        self.traced = should_trace

    def wait_for_client(self) -> None:
        self.client.wait(10)


def test_the_server_is_ready_at_once_or_when_the_client_attaches():
    fake = FakeDebugpy()
    server = DebugServer(DebugpySettings("127.0.0.1", 5678), fake)
    server.start()
    assert fake.listening == ("127.0.0.1", 5678) and server.ready.is_set()
    assert fake.traced is False  # the connection loop keeps running at a breakpoint
    waiting = DebugServer(DebugpySettings(wait_for_client=True), FakeDebugpy())
    waiting.start()
    assert not waiting.ready.is_set()
    waiting._debugpy.client.set()
    assert waiting.ready.wait(5)


def test_debugpy_settings_resolve_defaults_only_when_not_given():
    from plldb.attach.debugger import debugpy_settings

    assert debugpy_settings(False) is None
    assert debugpy_settings(True) == DebugpySettings("127.0.0.1", 5678, False)
    assert debugpy_settings(True, "192.168.1.5", 6000, True) == DebugpySettings(
        "192.168.1.5", 6000, True
    )
    with pytest.raises(DebuggerError, match=r"^--debugpy-host and --debugpy-port need --debugpy"):
        debugpy_settings(False, "127.0.0.1", 5678)
    with pytest.raises(DebuggerError, match=r"^--write-vscode needs --debugpy"):
        debugpy_settings(False, write_vscode=True)


# What VS Code writes for "create a launch.json file" with the Python Debugger extension.
VSCODE_DEFAULT = """{
    // Use IntelliSense to learn about possible attributes.
    // Hover to view descriptions of existing attributes.
    // For more information, visit: https://go.microsoft.com/fwlink/?linkid=830387
    "version": "0.2.0",
    "configurations": [
        {
            "name": "Python Debugger: Current File",
            "type": "debugpy",
            "request": "launch",
            "program": "${file}",
            "console": "integratedTerminal",
        },
    ]
}
"""


def _parse_jsonc(text: str):
    from plldb.attach import jsonc

    return jsonc.parse(text).value


def test_vscodes_default_launch_json_gets_the_configuration_and_keeps_its_comments(tmp_path):
    path = tmp_path / ".vscode" / "launch.json"
    path.parent.mkdir()
    path.write_text(VSCODE_DEFAULT)
    ours = launch_configuration(DebugpySettings(port=5679))
    said = write_vscode_launch(tmp_path, ours)
    assert said == f"launch configuration {LAUNCH_NAME!r} added to {path}"
    text = path.read_text()
    for line in VSCODE_DEFAULT.splitlines():  # every line of the user's file is still there
        assert line in text.splitlines()
    launch = _parse_jsonc(text)
    assert [c["name"] for c in launch["configurations"]] == [
        "Python Debugger: Current File", LAUNCH_NAME,
    ]  # fmt: skip
    assert launch["configurations"][1] == ours
    assert launch["version"] == "0.2.0"

    again = launch_configuration(DebugpySettings(port=5680))
    assert "updated in" in write_vscode_launch(tmp_path, again)
    updated = path.read_text()
    assert updated.count(LAUNCH_NAME) == 1 and "// Hover to view descriptions" in updated
    assert _parse_jsonc(updated)["configurations"][1]["connect"]["port"] == 5680


@pytest.mark.parametrize(
    "content",
    [
        '{"configurations": []}',
        '{"configurations": [ /* none yet */ ]}',
        '{"configurations": [{"name": "a"} // last\n]}',
        '{"configurations": [{"name": "a"}, /* c */ ], "x": "//not a comment"}',
    ],
)
def test_the_configuration_is_added_to_any_jsonc_list(tmp_path, content):
    path = tmp_path / ".vscode" / "launch.json"
    path.parent.mkdir()
    path.write_text(content)
    assert "added to" in write_vscode_launch(tmp_path, launch_configuration(DebugpySettings()))
    launch = _parse_jsonc(path.read_text())
    assert launch["configurations"][-1]["name"] == LAUNCH_NAME
    assert launch.get("x", "//not a comment") == "//not a comment"
    for comment in ("/* none yet */", "// last", "/* c */"):
        assert (comment in content) == (comment in path.read_text())


def test_jsonc_errors_say_where():
    from plldb.attach import jsonc

    with pytest.raises(jsonc.JsoncError, match="line 2"):
        jsonc.parse('{"a": 1,\n "b" 2}')
    assert jsonc.parse('/* x */ {"a": [1, 2,], "s": "/* kept */",}').value == {
        "a": [1, 2], "s": "/* kept */",
    }  # fmt: skip


def test_loading_debugpy_silences_the_frozen_modules_warning_unless_set(monkeypatch):
    from plldb.attach.debugger import FILE_VALIDATION_VARIABLE

    monkeypatch.delenv(FILE_VALIDATION_VARIABLE, raising=False)
    load_debugpy()
    assert os.environ[FILE_VALIDATION_VARIABLE] == "1"
    monkeypatch.setenv(FILE_VALIDATION_VARIABLE, "0")
    load_debugpy()
    assert os.environ[FILE_VALIDATION_VARIABLE] == "0"
