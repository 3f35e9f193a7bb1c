"""What moto leaves out of a deployed stack, put right after each deploy (docs/offline-cloud.md)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from plldb.local.resolver import DeployedStack, ResolveError, Resolver

log = logging.getLogger(__name__)

_EXECUTE_API_URL = re.compile(
    r"^(?P<scheme>wss|https)://(?P<api>[a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com"
    r"(?P<path>/.*)?$"
)

# api id -> (scheme -> local base URL, "http://127.0.0.1:PORT" or "ws://127.0.0.1:PORT")
Endpoints = dict[str, dict[str, str]]


def map_execute_api_url(value: Any, endpoints: Endpoints) -> Any:
    """An execute-api URL of an API the stand-in serves becomes the stand-in's address for it."""
    if not isinstance(value, str):
        return value
    match = _EXECUTE_API_URL.match(value)
    if not match or match["api"] not in endpoints:
        return value
    base = endpoints[match["api"]].get(match["scheme"])
    if base is None:
        return value
    return f"{base}/{match['api']}{match['path'] or ''}"


class Repairer:
    """Applies the repairs to one stack through moto's API (and its backend for outputs)."""

    def __init__(self, clients: Callable[[str], Any]) -> None:
        self.clients = clients
        self._published: dict[tuple[str, str], str] = {}  # (stack id, layer id) -> content marker

    def repair(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """Run every repair; returns one line per change made."""
        done: list[str] = []
        for step in (self.enable_ttl, self.publish_layers, self.configure_functions):
            done.extend(step(stack, endpoints))
        done.extend(self.resolve_outputs(stack, endpoints))
        return done

    def enable_ttl(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto ignores TimeToLiveSpecification in a template."""
        dynamodb = self.clients("dynamodb")
        done = []
        for logical_id, resource in stack.of_type("AWS::DynamoDB::Table").items():
            spec = resource.get("Properties", {}).get("TimeToLiveSpecification") or {}
            table = stack.physical_ids.get(logical_id)
            if not spec.get("Enabled") or not table:
                continue
            current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") == "ENABLED":
                continue
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["AttributeName"]},
            )
            done.append(f"{logical_id}: TTL enabled on {spec['AttributeName']}")
        return done

    def publish_layers(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto ignores a LayerVersion's LayerName and its Ref is not an ARN: publish it by name."""
        lambda_client = self.clients("lambda")
        resolver = Resolver(stack)
        done = []
        for logical_id, resource in stack.of_type("AWS::Lambda::LayerVersion").items():
            properties = resolver.resolve(resource.get("Properties", {}))
            name = properties.get("LayerName") or f"{stack.name}-{logical_id}"
            content = properties.get("Content", {})
            marker = repr(sorted(content.items()))
            key = (stack.stack_id, logical_id)
            if self._published.get(key) == marker and logical_id in stack.overrides:
                continue
            arguments: dict[str, Any] = {"LayerName": name, "Content": content}
            if properties.get("CompatibleRuntimes"):
                arguments["CompatibleRuntimes"] = properties["CompatibleRuntimes"]
            if properties.get("Description"):
                arguments["Description"] = properties["Description"]
            arn = lambda_client.publish_layer_version(**arguments)["LayerVersionArn"]
            stack.overrides[logical_id] = arn
            self._published[key] = marker
            done.append(f"{logical_id}: published as {arn}")
        return done

    def configure_functions(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto ignores a function's Layers, and leaves variables it cannot resolve literal."""
        lambda_client = self.clients("lambda")
        resolver = Resolver(stack)
        done = []
        for logical_id, resource in stack.of_type("AWS::Lambda::Function").items():
            name = stack.physical_ids.get(logical_id)
            if not name:
                continue
            properties = resource.get("Properties", {})
            try:
                layers = [str(arn) for arn in resolver.resolve(properties.get("Layers", []))]
                variables = resolver.resolve(properties.get("Environment", {})).get("Variables", {})
            except ResolveError as error:
                done.append(f"{logical_id}: left as moto made it ({error})")
                continue
            variables = {
                key: str(map_execute_api_url(value, endpoints))
                for key, value in variables.items()
                if value is not None
            }
            try:
                current = lambda_client.get_function_configuration(FunctionName=name)
            except ClientError:
                # moto fails to describe a function whose variables hold an object it could not
                # resolve (a layer's Ref); setting them from the template is the repair.
                current = {}
            current_layers = [layer["Arn"] for layer in current.get("Layers", [])]
            current_variables = current.get("Environment", {}).get("Variables", {})
            changes: dict[str, Any] = {}
            if layers != current_layers:
                changes["Layers"] = layers
            if variables != current_variables:
                changes["Environment"] = {"Variables": variables}
            if changes:
                lambda_client.update_function_configuration(FunctionName=name, **changes)
                done.append(f"{logical_id}: {' and '.join(sorted(changes))} set from the template")
        return done

    def resolve_outputs(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto leaves outputs that refer to unbuilt resources literal, or drops them."""
        from moto.cloudformation.models import cloudformation_backends
        from moto.cloudformation.parsing import Output

        backend = cloudformation_backends[stack.account_id][stack.region]
        moto_stack = backend.stacks.get(stack.stack_id)
        if moto_stack is None:
            return []
        resolver = Resolver(stack)
        done = []
        for key, output in (stack.template.get("Outputs") or {}).items():
            try:
                value = str(map_execute_api_url(resolver.resolve(output["Value"]), endpoints))
            except ResolveError as error:
                done.append(f"output {key}: left as moto made it ({error})")
                continue
            try:
                current = moto_stack.output_map.get(key)
            except Exception:  # moto failed to evaluate it; ours replaces it below
                current = None
            if current is not None and current.value == value:
                continue
            # moto keeps evaluated outputs in this private map; this is the only way to set one.
            moto_stack.output_map._parsed_outputs[key] = Output(
                key, value, output.get("Description", "")
            )
            done.append(f"output {key}: {value}")
        return done
