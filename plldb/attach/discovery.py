"""Finds the management REST API and the WebSocket API: overrides first, then stack `plldb`."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from plldb.attach.errors import BootstrapMissingError, EndpointError
from plldb.aws import AwsTarget
from plldb.bootstrap import names

log = logging.getLogger(__name__)

MANAGEMENT_API_OUTPUT = "ManagementAPIURL"
WEBSOCKET_OUTPUT = "WebSocketURL"
# For custom domains in front of the APIs; the command-line flags win over these.
MANAGEMENT_API_URL_ENV = "PLLDB_MANAGEMENT_API_URL"
WEBSOCKET_URL_ENV = "PLLDB_WEBSOCKET_URL"

_SCHEMES = {"management": ("https", "http"), "websocket": ("wss", "ws")}


@dataclass(frozen=True)
class Endpoints:
    """Where attach talks to, and where each address came from (a flag, a variable or a stack)."""

    management_api_url: str
    websocket_url: str
    management_api_source: str
    websocket_source: str


@dataclass(frozen=True)
class PlldbStack:
    status: str
    outputs: dict[str, str]


@dataclass(frozen=True)
class Override:
    """An endpoint chosen by precedence; url None means: read it from the stack."""

    url: str | None
    source: str


def choose_override(
    flag: str | None, environ: Mapping[str, str], variable: str, flag_name: str
) -> Override:
    """The override to use: the flag, else the environment variable, else none."""
    if flag:
        return Override(flag.strip(), flag_name)
    value = environ.get(variable, "").strip()
    if value:
        return Override(value, variable)
    return Override(None, f"stack {names.STACK_NAME}")


def check_url(url: str, kind: str, source: str) -> str:
    """Reject a URL that cannot work (wrong scheme, no host); kind is management or websocket."""
    schemes = _SCHEMES[kind]
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        expected = " or ".join(f"{scheme}://" for scheme in schemes)
        raise EndpointError(f"{source} must be a URL starting with {expected}: got {url!r}")
    return url


def discover_endpoints(
    target: AwsTarget,
    management_api_url: str | None = None,
    websocket_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    cloudformation: Any = None,
) -> Endpoints:
    """Both API addresses; stack `plldb` is only read when an override does not give them."""
    environ = os.environ if environ is None else environ
    management = choose_override(
        management_api_url, environ, MANAGEMENT_API_URL_ENV, "--management-api-url"
    )
    websocket = choose_override(websocket_url, environ, WEBSOCKET_URL_ENV, "--websocket-url")
    stack = None
    if management.url is None or websocket.url is None:
        stack = read_plldb_stack(target, cloudformation)
    management_url = management.url or _required_output(stack, MANAGEMENT_API_OUTPUT, target)
    websocket_url_ = websocket.url or _required_output(stack, WEBSOCKET_OUTPUT, target)
    endpoints = Endpoints(
        management_api_url=check_url(management_url, "management", management.source),
        websocket_url=check_url(websocket_url_, "websocket", websocket.source),
        management_api_source=management.source,
        websocket_source=websocket.source,
    )
    log.debug(
        "management API %s (from %s), WebSocket API %s (from %s)",
        endpoints.management_api_url,
        endpoints.management_api_source,
        endpoints.websocket_url,
        endpoints.websocket_source,
    )
    return endpoints


def discover_management_api(
    target: AwsTarget, management_api_url: str | None = None, cloudformation: Any = None
) -> str:
    """The management API's address alone (for commands that need no WebSocket)."""
    management = choose_override(
        management_api_url, os.environ, MANAGEMENT_API_URL_ENV, "--management-api-url"
    )
    url = management.url or _required_output(
        read_plldb_stack(target, cloudformation), MANAGEMENT_API_OUTPUT, target
    )
    return check_url(url, "management", management.source)


def read_plldb_stack(target: AwsTarget, cloudformation: Any = None) -> PlldbStack:
    """Stack `plldb` in the target's region; a missing stack is a clear error."""
    from plldb.bootstrap.stack import StackOperator

    client = cloudformation or target.client("cloudformation")
    stack = StackOperator(client, names.STACK_NAME).describe()
    if stack is None:
        raise BootstrapMissingError(
            f"No {names.STACK_NAME} stack in {target.region}: run `plldb bootstrap setup` first"
        )
    outputs = {
        item["OutputKey"]: item.get("OutputValue", "") for item in stack.get("Outputs") or []
    }
    return PlldbStack(status=stack.get("StackStatus", ""), outputs=outputs)


def _required_output(stack: PlldbStack | None, key: str, target: AwsTarget) -> str:
    assert stack is not None  # read whenever an override is missing
    value = stack.outputs.get(key, "").strip()
    if value:
        return value
    status = stack.status or "unknown status"
    raise BootstrapMissingError(
        f"Stack {names.STACK_NAME} in {target.region} ({status}) has no {key} output: "
        "run `plldb bootstrap setup` to bring it up to date"
    )
