"""The relay runtime's entry: the function's runtime behind a Runtime API proxy that relays.

Started by the exec wrapper as `python3 relay.py RUNTIME-COMMAND...`. It starts the proxy, then
the runtime (through the function's own exec wrapper, if it had one) with AWS_LAMBDA_RUNTIME_API
pointing at the proxy and plldb's variables removed, and exits with the runtime's status.
Standalone: standard library and boto3 only.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import _instrumentation as plan
from debugger_link import DebuggerLink, Settings
from runtime_proxy import RuntimeProxy

logger = logging.getLogger("plldb.relay")

# The names instrumentation sets on the function (packaged from lambda_functions/).
EXEC_WRAPPER, ORIGINAL_EXEC_WRAPPER = plan.EXEC_WRAPPER, plan.ORIGINAL_EXEC_WRAPPER


def layers_root() -> Path:
    """Where the layers are unpacked: /opt in Lambda, the directory above this one's package."""
    return Path(__file__).resolve().parent.parent


def runtime_command(arguments: list[str], environ: Mapping[str, str]) -> list[str]:
    """The runtime's command line, behind the function's own exec wrapper when it had one."""
    own_wrapper = environ.get(ORIGINAL_EXEC_WRAPPER)
    if not own_wrapper:
        return list(arguments)
    if own_wrapper.startswith("/opt/"):
        own_wrapper = str(layers_root() / own_wrapper[len("/opt/") :])
    return [own_wrapper, *arguments]


def runtime_environment(environ: Mapping[str, str], proxy_address: str) -> dict[str, str]:
    """The runtime's variables: as if plldb were not there, but for the Runtime API address."""
    variables = {name: value for name, value in environ.items() if not name.startswith("PLLDB_")}
    variables.pop(EXEC_WRAPPER, None)
    if environ.get(ORIGINAL_EXEC_WRAPPER):
        variables[EXEC_WRAPPER] = environ[ORIGINAL_EXEC_WRAPPER]
    variables["AWS_LAMBDA_RUNTIME_API"] = proxy_address
    return variables


def main(arguments: list[str]) -> int:
    logging.basicConfig(level=os.environ.get("PLLDB_LOG_LEVEL", "INFO"), format="%(message)s")
    # The runtime's own bootstrap puts its directory (which holds boto3) on the path; the exec
    # wrapper runs before it, so the relay does the same for itself.
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR")
    if runtime_dir and runtime_dir not in sys.path:
        sys.path.append(runtime_dir)
    if not arguments:
        logger.error("plldb relay: no runtime command given")
        return 2
    link = DebuggerLink(Settings.from_environ(os.environ))
    proxy = RuntimeProxy(os.environ["AWS_LAMBDA_RUNTIME_API"], link.relay)
    proxy.start()
    # boto3 loads while the runtime starts: its import is the relay's largest start-up cost.
    threading.Thread(target=link.warm_up, name="plldb-warm-up", daemon=True).start()
    command = runtime_command(arguments, os.environ)
    try:
        runtime = subprocess.Popen(  # noqa: S603 - the runtime command Lambda gave the wrapper
            command, env=runtime_environment(os.environ, proxy.address)
        )
    except OSError as error:
        logger.error("plldb relay: cannot start %s: %s", command[0], error)
        return 127
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: runtime.send_signal(number))
    return runtime.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
