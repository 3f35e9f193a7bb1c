"""Lambda resources moto's CloudFormation gets wrong: versions, aliases and KMS keys.

moto publishes an AWS::Lambda::Version while it builds the stack, before the repairs give
the function its layers and resolved variables, so the version would lack them; its Ref
and Version attribute resolve to nothing. It builds no AWS::Lambda::Alias, and ignores a
function's KmsKeyArn. These steps run inside Repairer.repair (docs/offline-cloud.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plldb.local.kms_environment import set_function_key
from plldb.local.resolver import DeployedStack, ResolveError, Resolver

Step = Callable[[DeployedStack, Any], list[str]]


def _name(value: Any) -> str:
    """A function's name from a name or an ARN (FunctionName takes either)."""
    text = str(value)
    return text.split(":function:", 1)[1].split(":")[0] if ":function:" in text else text


def _published_version(stack: DeployedStack, logical_id: str) -> str | None:
    from plldb.local.outputs import moto_stack

    found = moto_stack(stack.account_id, stack.region, stack.stack_id)
    # _parsed_resources, not resource_map[...]: indexing an unparsed one would publish again.
    resource = found.resource_map._parsed_resources.get(logical_id) if found else None
    version = getattr(resource, "version", None)
    return None if version is None else str(version)


class LambdaRepairs:
    """Per offline cloud: remembers which versions already got their repaired snapshot."""

    def __init__(self, clients: Callable[[str], Any]) -> None:
        self.clients = clients
        self._refreshed: set[str] = set()  # version ARNs

    def name_versions(self, stack: DeployedStack, endpoints: Any) -> list[str]:
        """Ref of a Version is its ARN and GetAtt Version its number, as in CloudFormation."""
        resolver = Resolver(stack)
        done = []
        for logical_id, resource in stack.of_type("AWS::Lambda::Version").items():
            version = _published_version(stack, logical_id)
            try:
                function = _name(resolver.resolve(resource["Properties"]["FunctionName"]))
            except (ResolveError, KeyError) as error:
                done.append(f"{logical_id}: left as moto made it ({error})")
                continue
            if version is None:
                continue
            arn = f"{resolver.function_arn(function)}:{version}"
            if stack.overrides.get(logical_id) != arn:
                done.append(f"{logical_id}: {arn}")
            stack.overrides[logical_id] = arn
            stack.attribute_overrides[(logical_id, "Version")] = version
        return done

    def set_keys(self, stack: DeployedStack, endpoints: Any) -> list[str]:
        """moto ignores a function's KmsKeyArn."""
        from moto.awslambda.models import lambda_backends

        resolver = Resolver(stack)
        backend = lambda_backends[stack.account_id][stack.region]
        done = []
        for logical_id, resource in stack.of_type("AWS::Lambda::Function").items():
            name = stack.physical_ids.get(logical_id)
            wanted = resource.get("Properties", {}).get("KmsKeyArn")
            if not name or wanted is None:
                continue
            try:
                key_arn = str(resolver.resolve(wanted) or "")
            except ResolveError as error:
                done.append(f"{logical_id}: KmsKeyArn not set ({error})")
                continue
            if (backend.get_function(name).kms_key_arn or "") != key_arn:
                set_function_key(stack.account_id, stack.region, name, key_arn)
                done.append(f"{logical_id}: KmsKeyArn set to {key_arn}")
        return done

    def refresh_versions(self, stack: DeployedStack, endpoints: Any) -> list[str]:
        """A version published during this deploy gets the repaired configuration, once:
        CloudFormation publishes it from the function as the template declares it."""
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[stack.account_id][stack.region]
        done = []
        for logical_id in stack.of_type("AWS::Lambda::Version"):
            arn = stack.overrides.get(logical_id)
            if not arn or arn in self._refreshed:
                continue
            name, version = arn.split(":function:", 1)[1].split(":")
            latest, published = backend.get_function(name), backend.get_function(name, version)
            published.layers = list(latest.layers)
            published.environment_vars = dict(latest.environment_vars or {})
            published.kms_key_arn = latest.kms_key_arn
            latest.code_or_config_updated = False  # the version now matches $LATEST again
            self._refreshed.add(arn)
            done.append(f"{logical_id}: version {version} has the repaired configuration")
        return done

    def apply_aliases(self, stack: DeployedStack, endpoints: Any) -> list[str]:
        """moto builds no AWS::Lambda::Alias: create or update it through the API."""
        lambda_client = self.clients("lambda")
        resolver = Resolver(stack)
        done = []
        for logical_id, resource in stack.of_type("AWS::Lambda::Alias").items():
            try:
                properties = resolver.resolve(resource.get("Properties", {}))
            except ResolveError as error:
                done.append(f"{logical_id}: not created ({error})")
                continue
            function = _name(properties["FunctionName"])
            wanted = {
                "FunctionName": function,
                "Name": properties["Name"],
                "FunctionVersion": str(properties["FunctionVersion"]),
                "Description": properties.get("Description", ""),
                "RoutingConfig": _routing(properties.get("RoutingConfig")),
            }
            try:
                current = lambda_client.get_alias(FunctionName=function, Name=wanted["Name"])
            except lambda_client.exceptions.ResourceNotFoundException:
                current = None
            if current is None:
                answer = lambda_client.create_alias(**wanted)
                done.append(f"{logical_id}: alias {answer['AliasArn']}")
            else:
                answer = lambda_client.update_alias(**wanted)
            stack.overrides[logical_id] = answer["AliasArn"]
        return done


def _routing(config: Any) -> dict[str, Any]:
    """CloudFormation lists weights ({FunctionVersion, FunctionWeight}); the API maps them."""
    weights = (config or {}).get("AdditionalVersionWeights") or []
    return {
        "AdditionalVersionWeights": {
            str(item["FunctionVersion"]): float(item["FunctionWeight"]) for item in weights
        }
    }
