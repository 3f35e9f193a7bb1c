"""Instruments a target stack's Python functions for a debug session, or restores them.

Invoked asynchronously (by $connect and $disconnect) with
    {"action": "instrument" | "restore", "sessionId": str, "stackName": str, "functions": [glob]}.
Every function's original configuration is kept in the ledger (_ledger: the session's item)
before it is changed, so `restore` can put it back exactly, even after a crash; the relay's IAM
grant is held and released through the ledger too (_grants). The sweeper restores through
`restore` here. Standalone: standard library and boto3 only.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _grants
import _instrumentation as plan
import _ledger
import _relay_liveness
import _sessions
import _stack_functions
import boto3
from _common import get_logger, short_id
from _grants import describe as _describe
from _progress import Progress, summarise
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)

INSTRUMENT, RESTORE = "instrument", "restore"
MAX_WORKERS = 4  # Lambda's control plane allows few concurrent updates per account
RETRYABLE = frozenset({"TooManyRequestsException", "ResourceConflictException"})
ATTEMPTS = 6
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
POLL_SECONDS = 1.0
UPDATE_WAIT_SECONDS = 120.0

# Updates can take a few seconds to be accepted; throttling is retried here and in _retrying.
LAMBDA_CONFIG = Config(
    connect_timeout=5, read_timeout=30, retries={"max_attempts": 4, "mode": "standard"}
)

sleep: Callable[[float], None] = time.sleep  # replaced in tests


class Refused(Exception):
    """The request cannot be carried out as sent; the message goes into the result."""


class UpdateFailed(Exception):
    """Lambda did not apply a configuration update (LastUpdateStatus Failed, or never finished)."""


@functools.cache
def lambda_client() -> Any:
    return boto3.client("lambda", config=LAMBDA_CONFIG)


@functools.cache
def cloudformation() -> Any:
    return boto3.client("cloudformation", config=_sessions.CLIENT_CONFIG)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action") if isinstance(event, dict) else None
    try:
        session_id, stack_name, globs = _read_event(event)
        if action == INSTRUMENT:
            return instrument(session_id, stack_name, globs)
        return restore(session_id, globs)
    except Refused as refusal:
        logger.warning("%s refused: %s", action or "request", refusal)
        return {"action": action, "error": str(refusal)}
    except (BotoCoreError, ClientError) as error:
        logger.exception("%s failed", action)
        return {"action": action, "error": f"AWS error: {_describe(error)}"}


def _read_event(event: Any) -> tuple[str, str, list[str]]:
    if not isinstance(event, dict) or event.get("action") not in (INSTRUMENT, RESTORE):
        raise Refused('action must be "instrument" or "restore"')
    session_id = event.get("sessionId")
    if not isinstance(session_id, str) or not session_id:
        raise Refused("sessionId must be a non-empty string")
    stack_name = event.get("stackName") or ""
    if not isinstance(stack_name, str) or (event["action"] == INSTRUMENT and not stack_name):
        raise Refused("stackName must be a non-empty string")
    globs = event.get("functions") or []
    if not isinstance(globs, list) or not all(isinstance(glob, str) for glob in globs):
        raise Refused("functions must be a list of glob patterns")
    return session_id, stack_name, globs


def _result(action: str) -> dict[str, Any]:
    return {
        "action": action,
        "changed": [],
        "skipped": {},
        "failed": {},
        "notes": {},
        "warnings": {},
    }


# ------------------------------------------------------------------ instrument


def instrument(session_id: str, stack_name: str, globs: list[str]) -> dict[str, Any]:
    layer_arn = _required("PLLDB_LAYER_ARN")
    variables = plan.session_variables(
        session_id,
        _required("SESSIONS_TABLE"),
        _required("DEBUGGER_TABLE"),
        _required("PLLDB_CALLBACK_URL"),
        _required("PLLDB_DEBUGGER_ROLE_ARN"),
    )
    session = _ledger.load_session(session_id)
    if session is None:
        raise Refused(f"session {short_id(session_id)} does not exist")
    if session.get("Status") == _sessions.CLOSED:
        raise Refused(f"session {short_id(session_id)} is closed")
    if not globs and session.get("Functions"):
        globs = json.loads(session["Functions"])  # `attach --function`, kept with the session
    result = _result(INSTRUMENT)
    functions = [
        (name, logical_id)
        for name, logical_id in discover(stack_name)
        if plan.matches(name, logical_id, globs)
    ]
    for name, _ in functions:
        if plan.is_plldb_function(name):
            result["skipped"][name] = "plldb's own function"
    functions = [function for function in functions if not plan.is_plldb_function(function[0])]
    configurations = _map(lambda function: _configuration(function[0]), functions)
    python = []
    for (name, logical_id), (configuration, error) in zip(functions, configurations, strict=True):
        if error is not None:
            result["failed"][name] = error
        elif not plan.is_python(configuration.get("Runtime")):
            runtime = configuration.get("Runtime") or "a container image"
            result["skipped"][name] = f"runtime {runtime} is not Python"
        else:
            python.append((name, logical_id, configuration))
    if not python:
        return _nothing_to_debug(session, stack_name, globs, functions, configurations, result)

    _ledger.ensure_map(session_id)
    recorded = session.get(_ledger.INSTRUMENTED) or {}
    progress = Progress("instrumented", len(python), session.get("ConnectionId"))
    grants = _grants.RelayGrants(session_id)

    def one(function: tuple[str, str, dict[str, Any]]) -> None:
        name, logical_id, configuration = function
        try:
            note = _instrument_one(
                session_id, name, logical_id, configuration, recorded.get(name), variables,
                layer_arn, grants,
            )  # fmt: skip
        except (plan.CannotInstrument, _Skip) as reason:
            result["skipped"][name] = str(reason)
            progress.step(name, "skipped")
        except (BotoCoreError, ClientError, UpdateFailed) as error:
            logger.warning("instrumenting %s failed: %s", name, _describe(error))
            result["failed"][name] = _describe(error)
            progress.step(name, "failed")
        else:
            result["changed"].append(name)
            if note:
                result["notes"][name] = note
            warning = grants.problem(configuration.get("Role", ""))
            if warning:
                result["warnings"][name] = warning
            progress.step(name)

    _map(one, python)
    result["changed"].sort()
    summarise(result, progress)
    pending = _relay_liveness.not_live_yet(python, result["changed"], grants.fresh)
    if pending:
        progress.say(_relay_liveness.notice(pending))
    logger.info(
        "session %s on stack %s: instrumented %d, skipped %d, failed %d",
        short_id(session_id),
        stack_name,
        len(result["changed"]),
        len(result["skipped"]),
        len(result["failed"]),
    )
    return result


def _nothing_to_debug(
    session: dict[str, Any],
    stack_name: str,
    globs: list[str],
    functions: list[tuple[str, str]],
    configurations: list[tuple[dict[str, Any], str | None]],
    result: dict[str, Any],
) -> dict[str, Any]:
    """Say what the stack holds, then end the session: a debugger with nothing to debug waits
    for nothing, and its CLI exits instead of staying attached."""
    narrowed = f" matching {', '.join(globs)}" if globs else ""
    found = sorted({**result["skipped"], **result["failed"]}.items())
    if found:
        summary = f"found {len(found)}: " + ", ".join(f"{name} ({why})" for name, why in found)
    elif globs:
        summary = "no function of the stack matches"
    else:
        summary = "the stack has no Lambda functions"
    result["message"] = (
        f"no Python functions{narrowed} in stack {stack_name} ({summary}): nothing changed"
    )
    logger.info("session %s: %s", short_id(session["SessionId"]), result["message"])
    progress = Progress("instrumented", 0, session.get("ConnectionId"))
    for name, why in found:
        progress.say(f"found {name}: {why}")
    progress.end(result["message"])
    return result


class _Skip(Exception):
    """This function is left alone, for the reason given."""


def _instrument_one(
    session_id: str,
    name: str,
    logical_id: str,
    configuration: dict[str, Any],
    recorded: dict[str, Any] | None,
    variables: dict[str, str],
    layer_arn: str,
    grants: _grants.RelayGrants,
) -> str | None:
    """Record the original (unless already recorded), then update and wait; the timeout note."""
    plan.check_readable(configuration)
    original = recorded
    if plan.is_instrumented(configuration) and recorded is None:
        other = (configuration.get("Environment") or {}).get("Variables", {}).get(plan.SESSION_ID)
        # A session taken over (--force) or lost hands its record on: it alone knows the
        # original timeout, which the instrumented configuration no longer shows.
        inherited = _ledger.recorded(other).get(name) if other else None
        if inherited:
            original = {**inherited, "LogicalId": logical_id}
            logger.info(
                "%s: taking over the original recorded by session %s", name, short_id(other)
            )
        else:
            logger.warning(
                "%s still carries plldb from session %s: recording it without plldb's changes",
                name,
                short_id(other),
            )
    if original is None or recorded is None:
        if original is None:
            original = {
                **plan.recorded_original(configuration, layer_arn),
                "LogicalId": logical_id,
            }
        plan.instrumented_configuration(original, variables, layer_arn)  # TooManyLayers first
        if not _ledger.record(session_id, name, original):
            session = _ledger.load_session(session_id) or {}
            if session.get("Status") == _sessions.CLOSED or not session:
                raise _Skip("the session was closed meanwhile")
            original = (session.get(_ledger.INSTRUMENTED) or {}).get(name) or original
    update = plan.instrumented_configuration(original, variables, layer_arn)
    role_arn = str(configuration.get("Role", ""))
    grants.grant(role_arn, name)
    _update(name, update)
    # A detach can close the session and run its restore while this update is on its way;
    # that restore may have missed this function, so undo it here.
    if _ledger.session_status(session_id) in (None, _sessions.CLOSED):
        _update(name, plan.restored_configuration(original))
        _ledger.forget(session_id, name)
        _grants.release(session_id, [(name, role_arn)])
        raise _Skip("the session closed while instrumenting: put back as it was")
    logger.info("instrumented %s for session %s", name, short_id(session_id))
    return plan.timeout_note(int(original["Timeout"]))


# ------------------------------------------------------------------ restore


def restore(session_id: str, globs: list[str]) -> dict[str, Any]:
    session = _ledger.load_session(session_id)
    if session is None:
        raise Refused(f"session {short_id(session_id)} does not exist")
    result = _result(RESTORE)
    recorded = {
        name: original
        for name, original in sorted((session.get(_ledger.INSTRUMENTED) or {}).items())
        if plan.matches(name, original.get("LogicalId"), globs)
    }
    if not recorded:
        result["message"] = "no instrumented functions to restore"
        logger.info("session %s: %s", short_id(session_id), result["message"])
        return result
    progress = Progress("restored", len(recorded), session.get("ConnectionId"))

    def one(item: tuple[str, dict[str, Any]]) -> None:
        name, original = item
        try:
            holder = _other_session(name, session_id)
            if holder:
                # Taken over (--force): the function and its record now belong to the other.
                result["skipped"][name] = f"now instrumented by session {short_id(holder)}"
                progress.step(name, "skipped")
            else:
                _update(name, plan.restored_configuration(original))
        except ClientError as error:
            if _sessions.error_code(error) != "ResourceNotFoundException":
                logger.warning("restoring %s failed: %s", name, _describe(error))
                result["failed"][name] = _describe(error)
                progress.step(name, "failed")
                return
            result["skipped"][name] = "the function no longer exists"
            progress.step(name, "skipped")
        except (BotoCoreError, UpdateFailed) as error:
            logger.warning("restoring %s failed: %s", name, _describe(error))
            result["failed"][name] = _describe(error)
            progress.step(name, "failed")
            return
        else:
            if name not in result["skipped"]:
                result["changed"].append(name)
                progress.step(name)
        _ledger.forget(session_id, name)

    _map(one, list(recorded.items()))
    result["changed"].sort()
    done = [*result["changed"], *result["skipped"]]
    released = [(name, str(recorded[name].get("Role", ""))) for name in done]
    result["warnings"].update(_grants.release(session_id, released))
    summarise(result, progress)
    logger.info(
        "session %s: restored %d, skipped %d, failed %d",
        short_id(session_id),
        len(result["changed"]),
        len(result["skipped"]),
        len(result["failed"]),
    )
    return result


# ------------------------------------------------------------------ discovery and Lambda


def discover(stack_name: str) -> list[tuple[str, str]]:
    """(function name, logical id) of every function in the stack and its nested stacks."""
    return _stack_functions.discover(cloudformation(), stack_name)


def _other_session(name: str, session_id: str) -> str | None:
    """The session that instruments the function now, if it is not `session_id`."""
    configuration = _retrying(lambda: lambda_client().get_function_configuration(FunctionName=name))
    if not plan.is_instrumented(configuration):
        return None
    holder = configuration["Environment"]["Variables"].get(plan.SESSION_ID)
    return holder if holder and holder != session_id else None


def _configuration(name: str) -> tuple[dict[str, Any], str | None]:
    try:
        return _retrying(
            lambda: lambda_client().get_function_configuration(FunctionName=name)
        ), None
    except (BotoCoreError, ClientError) as error:
        return {}, _describe(error)


def _update(name: str, configuration: dict[str, Any]) -> None:
    """update_function_configuration, retried while Lambda is busy, then wait until applied."""
    answer = _retrying(
        lambda: lambda_client().update_function_configuration(FunctionName=name, **configuration)
    )
    deadline = time.monotonic() + UPDATE_WAIT_SECONDS
    while answer.get("LastUpdateStatus") == "InProgress":
        if time.monotonic() > deadline:
            raise UpdateFailed(f"update still in progress after {UPDATE_WAIT_SECONDS:.0f} s")
        sleep(POLL_SECONDS)
        answer = _retrying(lambda: lambda_client().get_function_configuration(FunctionName=name))
    if answer.get("LastUpdateStatus") == "Failed":
        raise UpdateFailed(answer.get("LastUpdateStatusReason") or "update failed")


def _retrying(call: Callable[[], Any]) -> Any:
    """call(), retried with exponential backoff and jitter on throttling and update conflicts."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except ClientError as error:
            if _sessions.error_code(error) not in RETRYABLE or attempt == ATTEMPTS - 1:
                raise
        delay = min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2**attempt)
        sleep(delay / 2 + random.uniform(0, delay / 2))  # noqa: S311 (jitter, not security)
    raise AssertionError("unreachable")


def _map(work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    if not items:
        return []
    lambda_client(), cloudformation()  # built once, before the threads share them
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items))) as pool:
        return list(pool.map(work, items))


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise Refused(f"environment variable {name} is not set")
    return value
