"""debugpy in the attach process: the server an IDE attaches to, and its launch configuration."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plldb.attach import jsonc
from plldb.attach.errors import AttachError

log = logging.getLogger(__name__)

LAUNCH_NAME = "plldb: attach"
INSTALL_HINT = "pip install 'plldb[debug]'"
FILE_VALIDATION_VARIABLE = "PYDEVD_DISABLE_FILE_VALIDATION"


class DebuggerError(AttachError):
    """debugpy cannot be started as asked: not installed, or its port is taken."""


@dataclass(frozen=True)
class DebugpySettings:
    host: str = "127.0.0.1"
    port: int = 5678
    wait_for_client: bool = False


def debugpy_settings(
    debugpy: bool,
    host: str | None = None,
    port: int | None = None,
    wait_for_client: bool = False,
    write_vscode: bool = False,
) -> DebugpySettings | None:
    """The debugpy server attach asked for, or None; flags that need --debugpy are refused."""
    if not debugpy:
        given = [
            flag
            for flag, present in (
                ("--debugpy-host", host is not None),
                ("--debugpy-port", port is not None),
                ("--wait-for-client", wait_for_client),
                ("--write-vscode", write_vscode),
            )
            if present
        ]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise DebuggerError(f"{' and '.join(given)} {verb} --debugpy: add --debugpy")
        return None
    defaults = DebugpySettings()
    return DebugpySettings(
        defaults.host if host is None else host,
        defaults.port if port is None else port,
        wait_for_client,
    )


def load_debugpy() -> Any:
    # pydevd warns at every start that frozen (stdlib) modules may miss breakpoints; handlers
    # are never frozen, and the warning reads like a failure. It must be set before the import,
    # and the adapter process debugpy starts inherits it. A user's own value wins.
    os.environ.setdefault(FILE_VALIDATION_VARIABLE, "1")
    try:
        import debugpy
    except ImportError:
        raise DebuggerError(
            f"--debugpy needs debugpy, which is not installed: {INSTALL_HINT}"
        ) from None
    return debugpy


def check_port(host: str, port: int) -> None:
    """Refuse a port that is in use or not ours to take, before anything is attached."""
    if not 0 < port < 65536:
        raise DebuggerError(f"--debugpy-port {port} is not a TCP port (1-65535)")
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise DebuggerError(
                f"--debugpy-port {port} on {host} is already in use: "
                "pick another with --debugpy-port"
            ) from None
        raise DebuggerError(
            f"cannot listen on {host}:{port} for debugpy: {error.strerror}"
        ) from None
    finally:
        probe.close()


def launch_configuration(settings: DebugpySettings) -> dict[str, Any]:
    """The VS Code configuration that attaches to this debugpy server (same machine, same paths)."""
    return {
        "name": LAUNCH_NAME,
        "type": "debugpy",
        "request": "attach",
        "connect": {"host": settings.host, "port": settings.port},
        "justMyCode": True,
    }


def write_vscode_launch(project: Path, configuration: dict[str, Any]) -> str:
    """Add (or replace, by name) the configuration in .vscode/launch.json; what was done.

    The file may hold comments and trailing commas, as VS Code's own default does: it is
    edited as text, so everything else in it stays as the user wrote it.
    """
    path = project / ".vscode" / "launch.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        launch = {"version": "0.2.0", "configurations": [configuration]}
        path.write_text(json.dumps(launch, indent=4) + "\n", encoding="utf-8")
        return f"launch configuration {LAUNCH_NAME!r} written to {path}"
    try:
        text = path.read_text(encoding="utf-8")
        root = jsonc.parse(text)
    except (jsonc.JsoncError, UnicodeDecodeError) as error:
        return (
            f"{path} cannot be read as JSON ({error}); left untouched: add the configuration above"
        )
    configurations = root.members.get("configurations") if isinstance(root.value, dict) else None
    if configurations is None or not isinstance(configurations.value, list):
        return f"{path} has no configurations list; left untouched: add the configuration above"
    ours = [
        item
        for item in configurations.items
        if isinstance(item.value, dict) and item.value.get("name") == LAUNCH_NAME
    ]
    if ours:
        for item in reversed(ours):  # from the end, so earlier positions stay valid
            text = jsonc.replace_item(text, item, configuration)
        verb = "updated in"
    else:
        text = jsonc.append_item(text, configurations, configuration)
        verb = "added to"
    path.write_text(text, encoding="utf-8")
    return f"launch configuration {LAUNCH_NAME!r} {verb} {path}"


class DebugServer:
    """A debugpy server in this process; `ready` is set once invocations may run."""

    def __init__(self, settings: DebugpySettings, debugpy: Any | None = None) -> None:
        self.settings = settings
        self._debugpy = debugpy
        self.ready = threading.Event()

    def start(self) -> None:
        """Listen; called from the thread that runs the connection loop.

        That thread is left untraced, so a developer stopped at a breakpoint (which suspends
        every traced thread) does not also stop the connection: other invocations still arrive.
        """
        debugpy = self._debugpy or load_debugpy()
        debugpy.listen((self.settings.host, self.settings.port))
        debugpy.trace_this_thread(False)
        log.debug("debugpy listening on %s:%d", self.settings.host, self.settings.port)
        if not self.settings.wait_for_client:
            self.ready.set()
            return

        def wait() -> None:
            debugpy.wait_for_client()  # returns once the IDE has sent its breakpoints
            self.ready.set()

        threading.Thread(target=wait, name="plldb-debugpy-wait", daemon=True).start()
