"""Reads the APIs a deployed template declares into the specs the gateway stand-in serves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from plldb.local.resolver import DeployedStack, ResolveError, Resolver, stand_in_id
from plldb.local.specs import Authorizer, RestApi, RestMethod, WebSocketApi, WebSocketRoute

_LAMBDA_URI = re.compile(
    r"^arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(.+)/invocations$"
)
# Resources moto does not build: the offline cloud gives them ids of its own.
_STAND_IN_TYPES = (
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::RouteResponse",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGatewayV2::Stage",
)


class CatalogError(Exception):
    """A declared API the stand-in cannot serve; the message names the resource and why."""


@dataclass
class Catalog:
    websocket_apis: list[WebSocketApi] = field(default_factory=list)
    rest_apis: list[RestApi] = field(default_factory=list)
    # APIs with nothing to serve yet, as in AWS (a WebSocket API without a stage has no URL).
    idle: list[str] = field(default_factory=list)


def assign_stand_in_ids(stack: DeployedStack) -> None:
    """Give every resource moto leaves unbuilt a stable id, so Ref and Sub can resolve it."""
    for logical_id, resource in stack.resources.items():
        if resource.get("Type") in _STAND_IN_TYPES and not stack.physical_ids.get(logical_id):
            stack.overrides.setdefault(logical_id, stand_in_id(stack.name, logical_id))


def build_catalog(stack: DeployedStack) -> Catalog:
    assign_stand_in_ids(stack)
    resolver = Resolver(stack)
    catalog = Catalog()
    for logical_id, resource in stack.of_type("AWS::ApiGatewayV2::Api").items():
        protocol = resource.get("Properties", {}).get("ProtocolType")
        if protocol != "WEBSOCKET":
            raise CatalogError(f"{logical_id}: {protocol} APIs are not served by the offline cloud")
        if not _stages(stack, resolver, logical_id):
            catalog.idle.append(f"{logical_id}: a WebSocket API with no stage yet, so no URL")
            continue
        catalog.websocket_apis.append(_websocket_api(stack, resolver, logical_id, resource))
    for logical_id, resource in stack.of_type("AWS::ApiGateway::RestApi").items():
        catalog.rest_apis.append(_rest_api(stack, resolver, logical_id, resource))
    return catalog


def _refers_to(value: object, logical_id: str) -> bool:
    return value == {"Ref": logical_id}


def _function_of(uri: object, resolver: Resolver, where: str) -> str:
    try:
        resolved = resolver.resolve(uri)
    except ResolveError as error:
        raise CatalogError(f"{where}: {error}") from error
    match = _LAMBDA_URI.match(str(resolved))
    if not match:
        raise CatalogError(
            f"{where}: only Lambda proxy integrations are served offline ({resolved})"
        )
    return match.group(1)


def _stages(stack: DeployedStack, resolver: Resolver, api: str) -> list[str]:
    return [
        resolver.resolve(r["Properties"]["StageName"])
        for r in stack.of_type("AWS::ApiGatewayV2::Stage").values()
        if _refers_to(r.get("Properties", {}).get("ApiId"), api)
    ]


def _websocket_api(
    stack: DeployedStack, resolver: Resolver, api: str, resource: dict
) -> WebSocketApi:
    properties = resource.get("Properties", {})
    stages = _stages(stack, resolver, api)
    integrations = {
        logical_id: r
        for logical_id, r in stack.of_type("AWS::ApiGatewayV2::Integration").items()
        if _refers_to(r.get("Properties", {}).get("ApiId"), api)
    }
    authorizers = {
        logical_id: r
        for logical_id, r in stack.of_type("AWS::ApiGatewayV2::Authorizer").items()
        if _refers_to(r.get("Properties", {}).get("ApiId"), api)
    }
    two_way = {
        r["Properties"]["RouteId"].get("Ref")
        for r in stack.of_type("AWS::ApiGatewayV2::RouteResponse").values()
        if isinstance(r.get("Properties", {}).get("RouteId"), dict)
    }
    routes: dict[str, WebSocketRoute] = {}
    authorizer = None
    for logical_id, route in stack.of_type("AWS::ApiGatewayV2::Route").items():
        route_properties = route.get("Properties", {})
        if not _refers_to(route_properties.get("ApiId"), api):
            continue
        target = resolver.resolve(route_properties.get("Target", ""))
        integration_id = str(target).removeprefix("integrations/")
        integration = next(
            (i for key, i in integrations.items() if stack.overrides.get(key) == integration_id),
            None,
        )
        if integration is None:
            raise CatalogError(f"{logical_id}: its Target {target!r} names no integration of {api}")
        integration_properties = integration.get("Properties", {})
        if integration_properties.get("IntegrationType") != "AWS_PROXY":
            raise CatalogError(
                f"{logical_id}: integration type {integration_properties.get('IntegrationType')} "
                "is not served offline (only AWS_PROXY)"
            )
        function = _function_of(integration_properties.get("IntegrationUri"), resolver, logical_id)
        authorization = route_properties.get("AuthorizationType", "NONE")
        if authorization == "CUSTOM":
            authorizer = _authorizer(authorizers, route_properties, resolver, logical_id)
        elif authorization not in {"NONE", None}:
            raise CatalogError(
                f"{logical_id}: AuthorizationType {authorization} is not served offline"
            )
        routes[resolver.resolve(route_properties["RouteKey"])] = WebSocketRoute(
            function=function,
            authorization=authorization or "NONE",
            two_way=logical_id in two_way,
        )
    return WebSocketApi(
        api_id=resolver.ref(api),
        stage=str(stages[0]),
        name=str(resolver.resolve(properties.get("Name", api))),
        route_selection_expression=properties.get(
            "RouteSelectionExpression", "$request.body.action"
        ),
        routes=routes,
        authorizer=authorizer,
    )


def _authorizer(
    authorizers: dict[str, dict], route: dict, resolver: Resolver, where: str
) -> Authorizer:
    wanted = route.get("AuthorizerId")
    for logical_id, authorizer in authorizers.items():
        if _refers_to(wanted, logical_id):
            properties = authorizer.get("Properties", {})
            if properties.get("AuthorizerType") != "REQUEST":
                raise CatalogError(f"{logical_id}: only REQUEST authorizers are served offline")
            function = _function_of(properties.get("AuthorizerUri"), resolver, logical_id)
            sources = tuple(resolver.resolve(properties.get("IdentitySource", [])))
            return Authorizer(function=function, identity_source=sources)
    raise CatalogError(f"{where}: AuthorizerId does not name an authorizer of the same API")


def _rest_api(stack: DeployedStack, resolver: Resolver, api: str, resource: dict) -> RestApi:
    properties = resource.get("Properties", {})
    if "Body" in properties or "BodyS3Location" in properties:
        raise CatalogError(f"{api}: REST APIs defined by an OpenAPI body are not served offline")
    paths = _resource_paths(stack, api)
    methods: dict[tuple[str, str], RestMethod] = {}
    for logical_id, method in stack.of_type("AWS::ApiGateway::Method").items():
        method_properties = method.get("Properties", {})
        if not _refers_to(method_properties.get("RestApiId"), api):
            continue
        resource_id = method_properties.get("ResourceId")
        if isinstance(resource_id, dict) and "Ref" in resource_id:
            path = paths.get(resource_id["Ref"])
        else:
            path = "/"  # GetAtt RestApi.RootResourceId
        if path is None:
            raise CatalogError(f"{logical_id}: ResourceId names no resource of {api}")
        integration = method_properties.get("Integration", {})
        if integration.get("Type") != "AWS_PROXY":
            raise CatalogError(
                f"{logical_id}: integration type {integration.get('Type')} is not served offline "
                "(only AWS_PROXY)"
            )
        authorization = method_properties.get("AuthorizationType", "NONE")
        if authorization not in {"NONE", "AWS_IAM"}:
            raise CatalogError(
                f"{logical_id}: AuthorizationType {authorization} is not served offline"
            )
        function = _function_of(integration.get("Uri"), resolver, logical_id)
        methods[(path, method_properties["HttpMethod"].upper())] = RestMethod(
            function, authorization
        )
    stages = [
        resolver.resolve(r["Properties"]["StageName"])
        for kind in ("AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment")
        for r in stack.of_type(kind).values()
        if _refers_to(r.get("Properties", {}).get("RestApiId"), api)
        and r.get("Properties", {}).get("StageName")
    ]
    if not stages:
        raise CatalogError(f"{api}: no stage (AWS::ApiGateway::Stage or a Deployment's StageName)")
    return RestApi(
        api_id=str(resolver.ref(api)),
        stage=str(stages[0]),
        name=str(resolver.resolve(properties.get("Name", api))),
        methods=methods,
    )


def _resource_paths(stack: DeployedStack, api: str) -> dict[str, str]:
    """Logical id of each AWS::ApiGateway::Resource of the API -> its full path."""
    resources = {
        logical_id: r.get("Properties", {})
        for logical_id, r in stack.of_type("AWS::ApiGateway::Resource").items()
        if _refers_to(r.get("Properties", {}).get("RestApiId"), api)
    }
    paths: dict[str, str] = {}

    def path_of(logical_id: str, seen: tuple[str, ...] = ()) -> str:
        if logical_id in paths:
            return paths[logical_id]
        if logical_id in seen:
            raise CatalogError(f"{logical_id}: its ParentId chain loops")
        properties = resources[logical_id]
        parent = properties.get("ParentId")
        if isinstance(parent, dict) and "Ref" in parent and parent["Ref"] in resources:
            prefix = path_of(parent["Ref"], (*seen, logical_id))
        else:
            prefix = ""  # GetAtt RestApi.RootResourceId
        paths[logical_id] = f"{prefix}/{properties['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths
