"""Finding the APIs: stack `plldb`'s outputs in moto, and the flag and variable overrides."""

from __future__ import annotations

import json

import pytest

from plldb.attach.discovery import (
    MANAGEMENT_API_URL_ENV,
    WEBSOCKET_URL_ENV,
    Endpoints,
    discover_endpoints,
)
from plldb.attach.errors import BootstrapMissingError, EndpointError

STACK_MANAGEMENT = "https://m1.execute-api.eu-west-1.amazonaws.com/prod"
STACK_WEBSOCKET = "wss://w1.execute-api.eu-west-1.amazonaws.com/prod"


def create_plldb_stack(target, outputs: dict[str, str], name: str = "plldb") -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    target.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture
def plldb_stack(target):
    create_plldb_stack(
        target, {"ManagementAPIURL": STACK_MANAGEMENT, "WebSocketURL": STACK_WEBSOCKET}
    )
    return target


def test_the_stack_outputs_are_used_without_overrides(plldb_stack):
    assert discover_endpoints(plldb_stack, environ={}) == Endpoints(
        management_api_url=STACK_MANAGEMENT,
        websocket_url=STACK_WEBSOCKET,
        management_api_source="stack plldb",
        websocket_source="stack plldb",
    )


def test_environment_variables_override_the_stack(plldb_stack):
    environ = {
        MANAGEMENT_API_URL_ENV: "https://debug-api.example.com",
        WEBSOCKET_URL_ENV: "wss://debug-ws.example.com",
    }
    endpoints = discover_endpoints(plldb_stack, environ=environ)
    assert endpoints.management_api_url == "https://debug-api.example.com"
    assert endpoints.websocket_url == "wss://debug-ws.example.com"
    assert endpoints.management_api_source == MANAGEMENT_API_URL_ENV


def test_flags_override_the_environment(plldb_stack):
    environ = {MANAGEMENT_API_URL_ENV: "https://env.example.com", WEBSOCKET_URL_ENV: "wss://env"}
    endpoints = discover_endpoints(
        plldb_stack,
        management_api_url="https://flag.example.com",
        websocket_url="wss://flag.example.com",
        environ=environ,
    )
    assert (endpoints.management_api_url, endpoints.websocket_url) == (
        "https://flag.example.com",
        "wss://flag.example.com",
    )
    assert endpoints.websocket_source == "--websocket-url"


def test_one_override_takes_the_other_address_from_the_stack(plldb_stack):
    endpoints = discover_endpoints(
        plldb_stack, environ={WEBSOCKET_URL_ENV: "wss://debug-ws.example.com"}
    )
    assert endpoints.management_api_url == STACK_MANAGEMENT
    assert endpoints.websocket_url == "wss://debug-ws.example.com"


def test_the_process_environment_is_read_by_default(plldb_stack, monkeypatch):
    monkeypatch.setenv(WEBSOCKET_URL_ENV, "wss://from-env.example.com")
    assert discover_endpoints(plldb_stack).websocket_url == "wss://from-env.example.com"


def test_without_the_plldb_stack_the_error_says_to_bootstrap(target):
    create_plldb_stack(target, {"WebSocketURL": STACK_WEBSOCKET}, name="orders")
    with pytest.raises(BootstrapMissingError) as raised:
        discover_endpoints(target, environ={})
    assert str(raised.value) == "No plldb stack in eu-west-1: run `plldb bootstrap setup` first"


def test_both_overrides_need_no_stack_at_all(target):
    endpoints = discover_endpoints(
        target,
        management_api_url="http://127.0.0.1:9/api/prod",
        websocket_url="ws://127.0.0.1:9/api/prod",
        environ={},
    )
    assert endpoints.websocket_url == "ws://127.0.0.1:9/api/prod"


def test_a_stack_without_the_outputs_says_to_update_it(target):
    create_plldb_stack(target, {"WebSocketURL": STACK_WEBSOCKET})
    with pytest.raises(BootstrapMissingError, match="has no ManagementAPIURL output"):
        discover_endpoints(target, environ={})


@pytest.mark.parametrize(
    ("flags", "source"),
    [
        ({"websocket_url": "https://not-a-websocket.example.com"}, "--websocket-url"),
        ({"management_api_url": "wss://not-rest.example.com"}, "--management-api-url"),
        ({"management_api_url": "debug.example.com"}, "--management-api-url"),
    ],
)
def test_an_unusable_override_names_where_it_came_from(target, flags, source):
    urls = {"management_api_url": STACK_MANAGEMENT, "websocket_url": STACK_WEBSOCKET, **flags}
    with pytest.raises(EndpointError, match=f"^{source} must be a URL starting with"):
        discover_endpoints(target, environ={}, **urls)


def test_an_unusable_variable_names_the_variable(target):
    environ = {WEBSOCKET_URL_ENV: "http://debug.example.com"}
    with pytest.raises(EndpointError, match=f"^{WEBSOCKET_URL_ENV} must be a URL"):
        discover_endpoints(target, management_api_url=STACK_MANAGEMENT, environ=environ)
