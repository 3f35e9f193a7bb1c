"""What moto leaves out of a deployed stack, put right after each deploy (docs/offline-cloud.md)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from plldb.local.lambda_repairs import LambdaRepairs
from plldb.local.resolver import DeployedStack, ResolveError, Resolver
from plldb.local.scheduler_repairs import SchedulerRepairs

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
        self.lambdas = LambdaRepairs(clients)
        self.schedules = SchedulerRepairs(clients)
        # (stack id, layer id) -> (content marker, the ARN published for that content)
        self._published: dict[tuple[str, str], tuple[str, str]] = {}
        self.published_arns: dict[str, list[tuple[str, str]]] = {}  # stack id -> [(id, arn)]

    def repair(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """Run every repair; returns one line per change made."""
        done: list[str] = []
        steps = (self.enable_ttl, self.apply_bucket_policies, self.resolve_role_policies,
                 self.resolve_managed_policies, self.publish_layers)  # fmt: skip
        lambdas = self.lambdas
        # Versions are named before the functions' variables (which may refer to them) and
        # take the repaired configuration after; aliases need the version numbers.
        functions = (lambdas.name_versions, self.configure_functions, lambdas.set_keys)
        after = (lambdas.refresh_versions, lambdas.apply_aliases, self.sync_permissions,
                 self.schedules.apply)  # fmt: skip
        for step in (*steps, *functions, *after):
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

    def apply_bucket_policies(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto builds no AWS::S3::BucketPolicy (it warns and carries on)."""
        s3 = self.clients("s3")
        resolver = Resolver(stack)
        done = []
        for logical_id, resource in stack.of_type("AWS::S3::BucketPolicy").items():
            try:
                properties = resolver.resolve(resource.get("Properties", {}))
            except ResolveError as error:
                done.append(f"{logical_id}: not applied ({error})")
                continue
            policy = json.dumps(properties["PolicyDocument"], sort_keys=True)
            try:
                current = s3.get_bucket_policy(Bucket=properties["Bucket"])["Policy"]
            except ClientError:
                current = None
            if current is not None and json.loads(current) == properties["PolicyDocument"]:
                continue
            s3.put_bucket_policy(Bucket=properties["Bucket"], Policy=policy)
            stack.overrides.setdefault(logical_id, properties["Bucket"])
            done.append(f"{logical_id}: policy set on bucket {properties['Bucket']}")
        return done

    def resolve_role_policies(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto leaves `${Api}` literal in a role's inline policy when Api is a resource it does
        not build (a WebSocket API), so the statement would name no real ARN; put it resolved."""
        iam = self.clients("iam")
        resolver = Resolver(stack)
        done = []
        for logical_id, resource in stack.of_type("AWS::IAM::Role").items():
            role = stack.physical_ids.get(logical_id)
            for policy in resource.get("Properties", {}).get("Policies") or []:
                name = policy.get("PolicyName")
                if not role or not isinstance(name, str) or not _unresolved(iam, role, name):
                    continue
                try:
                    document = resolver.resolve(policy["PolicyDocument"])
                except ResolveError as error:
                    done.append(f"{logical_id}: policy {name} left as moto made it ({error})")
                    continue
                iam.put_role_policy(
                    RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document)
                )
                done.append(f"{logical_id}: policy {name} resolved")
        return done

    def resolve_managed_policies(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto sometimes builds a role twice while resolving a managed policy's
        `!GetAtt Role.Arn` (depending on hash order), so the policy names a role that is not the
        stack's; its document is evaluated again from the stack's resources and, if it
        differs, made the default version."""
        iam = self.clients("iam")
        resolver = Resolver(stack)
        done = []
        for logical_id, resource in stack.of_type("AWS::IAM::ManagedPolicy").items():
            arn = stack.physical_ids.get(logical_id, "")
            if not arn.startswith("arn:"):
                continue
            try:
                document = resolver.resolve(resource.get("Properties", {})["PolicyDocument"])
                policy = iam.get_policy(PolicyArn=arn)["Policy"]
                version = iam.get_policy_version(
                    PolicyArn=arn, VersionId=policy["DefaultVersionId"]
                )["PolicyVersion"]["Document"]
            except (ResolveError, ClientError, KeyError) as error:
                done.append(f"{logical_id}: left as moto made it ({error})")
                continue
            current = json.loads(version) if isinstance(version, str) else version
            if current == document:
                continue
            iam.create_policy_version(
                PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True
            )
            done.append(f"{logical_id}: document resolved from the stack's resources")
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
            published = self._published.get(key)
            if published and published[0] == marker:
                stack.overrides[logical_id] = published[1]  # the same content: no new version
                continue
            arguments: dict[str, Any] = {"LayerName": name, "Content": content}
            if properties.get("CompatibleRuntimes"):
                arguments["CompatibleRuntimes"] = properties["CompatibleRuntimes"]
            if properties.get("Description"):
                arguments["Description"] = properties["Description"]
            arn = lambda_client.publish_layer_version(**arguments)["LayerVersionArn"]
            stack.overrides[logical_id] = arn
            self.published_arns.setdefault(stack.stack_id, []).append((logical_id, arn))
            self._published[key] = (marker, arn)
            done.append(f"{logical_id}: published as {arn}")
        return done

    def forget(self, stack_id: str) -> list[tuple[str, str]]:
        """The stack is deleted: returns the layer versions published for it, (id, ARN)."""
        for key in [key for key in self._published if key[0] == stack_id]:
            del self._published[key]
        return self.published_arns.pop(stack_id, [])

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
            current_layers, current_variables = _function_configuration(stack, name)
            changes: dict[str, Any] = {}
            if layers != current_layers:
                changes["Layers"] = layers
            if variables != current_variables:
                changes["Environment"] = {"Variables": variables}
            if changes:
                lambda_client.update_function_configuration(FunctionName=name, **changes)
                done.append(f"{logical_id}: {' and '.join(sorted(changes))} set from the template")
        return done

    def sync_permissions(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto builds a Lambda permission only at create, even when an update replaces its rule."""
        from plldb.local.permissions import sync_permissions

        return sync_permissions(stack, self.clients("lambda"))

    def resolve_outputs(self, stack: DeployedStack, endpoints: Endpoints) -> list[str]:
        """moto leaves outputs that refer to unbuilt resources literal, or drops them, and
        evaluates them again on every read; they are evaluated once here and kept."""
        from plldb.local.outputs import OutputValue, current_value, freeze, moto_stack

        found = moto_stack(stack.account_id, stack.region, stack.stack_id)
        if found is None:
            return []
        resolver = Resolver(stack)
        done, values = [], []
        for key, output in (stack.template.get("Outputs") or {}).items():
            current = current_value(found, key)
            try:
                if "Condition" in output and not resolver.condition(output["Condition"]):
                    continue
                value = str(map_execute_api_url(resolver.resolve(output["Value"]), endpoints))
                export = output.get("Export", {}).get("Name")
                export_name = None if export is None else str(resolver.resolve(export))
            except ResolveError as error:
                done.append(f"output {key}: left as moto made it ({error})")
                if current is not None:
                    values.append(OutputValue(key, current, output.get("Description")))
                continue
            values.append(OutputValue(key, value, output.get("Description"), export_name))
            if current != value:
                done.append(f"output {key}: {value}")
        freeze(found, values)
        return done


def _unresolved(iam: Any, role: str, policy: str) -> bool:
    try:
        document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    except ClientError:
        return False
    return "${" in (document if isinstance(document, str) else json.dumps(document))


def _function_configuration(stack: DeployedStack, name: str) -> tuple[list[str], dict[str, Any]]:
    """A function's layers and variables, read from moto's backend: its GetFunctionConfiguration
    fails (500) while a variable holds an object moto could not resolve, such as a layer's Ref."""
    from moto.awslambda.models import lambda_backends

    function = lambda_backends[stack.account_id][stack.region].get_function(name)
    return [layer["Arn"] for layer in function.layers], dict(function.environment_vars or {})
