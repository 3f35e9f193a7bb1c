"""What to change on a target function to debug it, and how to undo it exactly. Pure: no AWS calls.

Packaged into the instrumentation function's zip. Standard library only.

A recorded original is what get_function_configuration said before plldb touched the function:
    {"FunctionArn": str, "Role": str, "Layers": [arn, ...], "Timeout": int,
     "Environment": {name: value}}
with "Environment" absent when the function had no variables.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

MAX_LAYERS = 5  # Lambda's limit per function
MAX_TIMEOUT = 900  # Lambda's maximum, in seconds
API_GATEWAY_REST_TIMEOUT = 29
EXEC_WRAPPER = "AWS_LAMBDA_EXEC_WRAPPER"
WRAPPER_PATH = "/opt/bin/bootstrap"  # the exec wrapper inside the plldb layer
ORIGINAL_EXEC_WRAPPER = "PLLDB_ORIGINAL_EXEC_WRAPPER"
SESSION_ID = "PLLDB_SESSION_ID"
# The function's own timeout, kept on the function itself: whoever finds it instrumented (a
# session that took over, or one racing a restore) can put it back without any record.
ORIGINAL_TIMEOUT = "PLLDB_ORIGINAL_TIMEOUT"
# Every variable plldb adds; a function's own variables with these names would be shadowed.
PLLDB_VARIABLES = (
    SESSION_ID,
    "PLLDB_SESSIONS_TABLE",
    "PLLDB_DEBUGGER_TABLE",
    "PLLDB_CALLBACK_URL",
    "PLLDB_DEBUGGER_ROLE_ARN",
    ORIGINAL_EXEC_WRAPPER,
    ORIGINAL_TIMEOUT,
)


PLLDB_FUNCTION_PREFIX = "plldb-"  # plldb's own functions (template.yaml) are never instrumented


class CannotInstrument(ValueError):
    """A function plldb must leave untouched; the message says why, in one line."""


class TooManyLayers(CannotInstrument):
    """The function already uses Lambda's maximum of layers: the debugger layer does not fit."""


class UnreadableVariables(CannotInstrument):
    """Lambda would not show the function's variables (KMS): writing ours would lose its own."""


def check_readable(configuration: dict[str, Any]) -> None:
    """Raise UnreadableVariables when get_function_configuration gave Environment.Error.

    Lambda answers that way, with no Variables, to a caller that may not kms:Decrypt the
    function's customer managed key; an update with only plldb's variables would replace the
    function's own, and a restore could not put them back.
    """
    environment = configuration.get("Environment")
    error = environment.get("Error") if isinstance(environment, dict) else None
    if not error:
        return
    key = configuration.get("KMSKeyArn") or "its customer managed KMS key"
    code = error.get("ErrorCode", "an error") if isinstance(error, dict) else str(error)
    raise UnreadableVariables(
        f"its environment variables could not be read ({code}): the instrumentation role "
        f"needs kms:Decrypt on {key}; left untouched"
    )


def is_python(runtime: Any) -> bool:
    """A managed Python runtime (python3.12, ...); container images have no runtime."""
    return isinstance(runtime, str) and runtime.startswith("python")


def is_plldb_function(function_name: str) -> bool:
    return function_name.startswith(PLLDB_FUNCTION_PREFIX)


def matches(function_name: str, logical_id: str | None, globs: Iterable[str] | None) -> bool:
    """True when no globs are given, or one matches the function's name or logical id."""
    patterns = [glob for glob in globs or () if glob]
    if not patterns:
        return True
    names = [name for name in (function_name, logical_id) if name]
    return any(fnmatch.fnmatchcase(name, glob) for glob in patterns for name in names)


def session_variables(
    session_id: str, sessions_table: str, debugger_table: str, callback_url: str, role_arn: str
) -> dict[str, str]:
    """The variables the relay runtime reads in an instrumented function."""
    return {
        SESSION_ID: session_id,
        "PLLDB_SESSIONS_TABLE": sessions_table,
        "PLLDB_DEBUGGER_TABLE": debugger_table,
        "PLLDB_CALLBACK_URL": callback_url,
        "PLLDB_DEBUGGER_ROLE_ARN": role_arn,
    }


def layer_arns(layers: Iterable[Any] | None) -> list[str]:
    """Layer version ARNs in order, from get_function_configuration's dicts or plain strings."""
    return [layer["Arn"] if isinstance(layer, dict) else str(layer) for layer in layers or ()]


def unversioned(layer_arn: str) -> str:
    """arn:aws:lambda:REGION:ACCOUNT:layer:NAME, without the version number."""
    return layer_arn.rsplit(":", 1)[0] if layer_arn.count(":") >= 7 else layer_arn


def _variables(configuration: dict[str, Any]) -> dict[str, str] | None:
    environment = configuration.get("Environment")
    if not isinstance(environment, dict) or "Variables" not in environment:
        return None
    return dict(environment["Variables"] or {})


def is_instrumented(configuration: dict[str, Any]) -> bool:
    """The function still carries plldb's wrapper and a session (left over by a lost session)."""
    variables = _variables(configuration) or {}
    return variables.get(EXEC_WRAPPER) == WRAPPER_PATH and SESSION_ID in variables


def recorded_original(
    configuration: dict[str, Any], layer_arn: str | None = None
) -> dict[str, Any]:
    """What to keep of a function's configuration (from get_function_configuration) to restore it.

    A configuration that still carries plldb's changes (a session that was never restored) is
    recorded without them: plldb's variables and any version of `layer_arn` are left out and the
    function's own exec wrapper is put back. Its own timeout comes from PLLDB_ORIGINAL_TIMEOUT.
    """
    check_readable(configuration)
    variables = _variables(configuration)
    layers = layer_arns(configuration.get("Layers"))
    timeout = int(configuration["Timeout"])
    if variables is not None and is_instrumented(configuration):
        own_wrapper = variables.get(ORIGINAL_EXEC_WRAPPER)
        if str(variables.get(ORIGINAL_TIMEOUT, "")).isdigit():
            timeout = int(variables[ORIGINAL_TIMEOUT])
        variables = {
            name: value
            for name, value in variables.items()
            if name not in PLLDB_VARIABLES and name != EXEC_WRAPPER
        }
        if own_wrapper:
            variables[EXEC_WRAPPER] = own_wrapper
        if layer_arn:
            layers = [arn for arn in layers if unversioned(arn) != unversioned(layer_arn)]
    recorded: dict[str, Any] = {
        "FunctionArn": str(configuration.get("FunctionArn", "")),
        "Role": str(configuration.get("Role", "")),
        "Layers": layers,
        "Timeout": timeout,
    }
    if variables is not None:
        recorded["Environment"] = variables
    return recorded


def instrumented_configuration(
    original: dict[str, Any], session_variables: dict[str, str], layer_arn: str
) -> dict[str, Any]:
    """Layers, Environment and Timeout for update_function_configuration while debugging.

    `original` is a recorded original (see recorded_original). Raises TooManyLayers when the
    debugger layer does not fit beside the function's own layers.
    """
    own_layers = [
        arn
        for arn in layer_arns(original.get("Layers"))
        if unversioned(arn) != unversioned(layer_arn)
    ]
    if len(own_layers) >= MAX_LAYERS:
        raise TooManyLayers(
            f"already uses {len(own_layers)} layers, Lambda's maximum is {MAX_LAYERS}: "
            "no room for the plldb debugger layer"
        )
    own_variables = dict(original.get("Environment") or {})
    variables = {
        **own_variables,
        **session_variables,
        EXEC_WRAPPER: WRAPPER_PATH,
        ORIGINAL_TIMEOUT: str(int(original["Timeout"])),
    }
    own_wrapper = own_variables.get(EXEC_WRAPPER)
    if own_wrapper and own_wrapper != WRAPPER_PATH:
        # The relay runtime runs the function's own wrapper in turn.
        variables[ORIGINAL_EXEC_WRAPPER] = own_wrapper
    return {
        "Layers": [*own_layers, layer_arn],
        "Environment": {"Variables": variables},
        "Timeout": MAX_TIMEOUT,
    }


def restored_configuration(recorded: dict[str, Any]) -> dict[str, Any]:
    """Layers, Environment and Timeout for update_function_configuration that undo plldb exactly.

    A function that had no variables gets an empty Variables map: Lambda's way to remove them.
    """
    return {
        "Layers": layer_arns(recorded.get("Layers")),
        "Environment": {"Variables": dict(recorded.get("Environment") or {})},
        "Timeout": int(recorded["Timeout"]),
    }


def role_name(role_arn: str) -> str | None:
    """arn:aws:iam::ACCOUNT:role/path/NAME -> NAME; None for anything else."""
    if ":role/" not in role_arn:
        return None
    return role_arn.rsplit("/", 1)[-1] or None


def roles_to_release(
    restored: Iterable[dict[str, Any]], still_recorded: Iterable[dict[str, Any]]
) -> list[str]:
    """Roles of restored functions that no function still instrumented by the session uses."""
    kept = {original.get("Role") for original in still_recorded}
    return sorted({original["Role"] for original in restored if original.get("Role")} - kept)


def timeout_note(original_timeout: int) -> str | None:
    """What the user should know about the raised timeout; None when it was already the maximum."""
    if original_timeout >= MAX_TIMEOUT:
        return None
    return (
        f"timeout raised from {original_timeout} s to {MAX_TIMEOUT} s; "
        f"API Gateway REST callers still time out after {API_GATEWAY_REST_TIMEOUT} s"
    )


def progress_message(verb: str, done: int, total: int, name: str, detail: str = "") -> str:
    """One line for the CLI, e.g. "instrumented 7/12: orders-api"."""
    line = f"{verb} {done}/{total}: {name}"
    return f"{line} ({detail})" if detail else line
