"""The offline cloud's reading of deployed templates: intrinsics and the APIs they declare."""

from __future__ import annotations

import pytest

from plldb.bootstrap.render import load_template
from plldb.local.catalog import CatalogError, build_catalog
from plldb.local.resolver import DeployedStack, ResolveError, Resolver, stand_in_id
from plldb.resources import cloudformation_dir

ACCOUNT = "123456789012"


def _plldb_stack() -> DeployedStack:
    template = load_template((cloudformation_dir() / "template.yaml").read_text())
    functions = {
        logical_id: resource["Properties"]["FunctionName"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    return DeployedStack(
        name="plldb",
        stack_id="arn:aws:cloudformation:eu-west-1:123456789012:stack/plldb/1",
        region="eu-west-1",
        account_id=ACCOUNT,
        template=template,
        parameters={"StageName": "live", "LogRetentionInDays": "14", "ArtifactBucket": "b"},
        physical_ids={**functions, "PLLDBManagementAPI": "restid1234"},
    )


def test_the_plldb_template_yields_its_websocket_and_rest_apis():
    stack = _plldb_stack()
    catalog = build_catalog(stack)
    (websocket,) = catalog.websocket_apis
    assert websocket.api_id == stand_in_id("plldb", "PLLDBAPI")
    assert websocket.stage == "live"
    assert websocket.route_selection_expression == "$request.body.action"
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:"
    assert {key: route.function for key, route in websocket.routes.items()} == {
        "$connect": arn + "plldb-websocket-connect",
        "$disconnect": arn + "plldb-websocket-disconnect",
        "$default": arn + "plldb-websocket-default",
    }
    assert websocket.routes["$connect"].authorization == "CUSTOM"
    assert websocket.authorizer.function == arn + "plldb-websocket-authorize"
    assert websocket.authorizer.identity_source == ("route.request.querystring.sessionId",)
    (rest,) = catalog.rest_apis
    assert (rest.api_id, rest.stage) == ("restid1234", "live")
    method = rest.methods[("/sessions", "POST")]
    assert (method.function, method.authorization) == (arn + "plldb-restapi", "AWS_IAM")


def test_outputs_resolve_once_stand_in_ids_exist():
    stack = _plldb_stack()
    build_catalog(stack)
    resolver = Resolver(stack)
    url = resolver.resolve(stack.template["Outputs"]["WebSocketURL"]["Value"])
    assert (
        url == f"wss://{stand_in_id('plldb', 'PLLDBAPI')}.execute-api.eu-west-1.amazonaws.com/live"
    )


def test_intrinsics():
    stack = DeployedStack(
        name="s",
        stack_id="id",
        region="us-east-1",
        account_id=ACCOUNT,
        template={
            "Conditions": {"Prod": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}},
            "Resources": {"Fn": {"Type": "AWS::Lambda::Function"}},
        },
        parameters={"Env": "dev"},
        physical_ids={"Fn": "my-fn"},
    )
    resolver = Resolver(stack)
    assert resolver.resolve({"Fn::Sub": "${AWS::Region}-${Fn}-${Fn.Arn}"}) == (
        "us-east-1-my-fn-arn:aws:lambda:us-east-1:123456789012:function:my-fn"
    )
    assert (
        resolver.resolve({"Fn::Sub": ["${A}/${!Literal}", {"A": {"Ref": "Env"}}]})
        == "dev/${Literal}"
    )
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Env"}]]}) == "a-dev"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert resolver.resolve({"Fn::If": ["Prod", "big", "small"]}) == "small"
    with pytest.raises(ResolveError, match="unknown name Nope"):
        resolver.resolve({"Ref": "Nope"})
    with pytest.raises(ResolveError, match="Fn::ImportValue"):
        resolver.resolve({"Fn::ImportValue": "x"})


def test_an_api_the_stand_in_cannot_serve_names_the_resource_and_why():
    stack = _plldb_stack()
    stack.template["Resources"]["PLLDBAPIDefaultIntegration"]["Properties"]["IntegrationType"] = (
        "MOCK"
    )
    with pytest.raises(CatalogError, match="PLLDBAPIDefaultRoute: integration type MOCK"):
        build_catalog(stack)
    stack = _plldb_stack()
    stack.template["Resources"]["PLLDBAPI"]["Properties"]["ProtocolType"] = "HTTP"
    with pytest.raises(CatalogError, match="PLLDBAPI: HTTP APIs are not served"):
        build_catalog(stack)
    stack = _plldb_stack()


def test_a_websocket_api_without_a_stage_is_idle_and_the_rest_is_still_served():
    stack = _plldb_stack()
    del stack.template["Resources"]["PLLDBAPIStage"]
    catalog = build_catalog(stack)
    assert catalog.websocket_apis == []
    assert catalog.idle == ["PLLDBAPI: a WebSocket API with no stage yet, so no URL"]
    assert [api.api_id for api in catalog.rest_apis] == ["restid1234"]
