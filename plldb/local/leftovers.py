"""What moto's DeleteStack leaves behind, removed as CloudFormation's delete would remove it.

moto deletes some resource types of a stack and silently keeps others (layer versions, REST
APIs, and tables that reading the deleted stack's outputs builds again), so a second deploy of
the same stack fails with "already exists". Each resource the stack owned is looked up after
moto's delete and removed if it is still there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from plldb.local.resolver import DeployedStack

_GONE = {
    "ResourceNotFoundException",
    "NotFoundException",
    "NoSuchEntity",
    "NoSuchEntityException",
}


@dataclass(frozen=True)
class Leftover:
    resource_type: str
    physical_id: str
    logical_id: str


def expected(stack: DeployedStack) -> list[Leftover]:
    """The resources of `stack` a delete must remove (not those with DeletionPolicy Retain)."""
    found = []
    layers = _moto_layer_arns(stack)
    for logical_id, resource in stack.resources.items():
        kind = resource.get("Type", "")
        physical = layers.get(logical_id) or stack.physical_ids.get(logical_id)
        if kind in _REMOVERS and physical and resource.get("DeletionPolicy") != "Retain":
            found.append(Leftover(kind, physical, logical_id))
    return found


def remove(clients: Callable[[str], Any], items: list[Leftover]) -> list[str]:
    """Delete each item that still exists; one line per item removed."""
    done = []
    # Roles last: a policy or function may still name them.
    for item in sorted(items, key=lambda i: i.resource_type == "AWS::IAM::Role"):
        try:
            _REMOVERS[item.resource_type](clients, item.physical_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _GONE:
                continue
            done.append(f"{item.logical_id}: could not remove {item.physical_id}: {error}")
            continue
        done.append(f"{item.logical_id}: removed {item.physical_id}, which moto's delete left")
    return done


def layer_versions(arns: list[str], logical_id: str) -> list[Leftover]:
    return [Leftover("AWS::Lambda::LayerVersion", arn, logical_id) for arn in arns]


def _moto_layer_arns(stack: DeployedStack) -> dict[str, str]:
    """moto names a stack's layer at random and gives it no physical id: ask its stack."""
    from plldb.local.outputs import moto_stack

    found = moto_stack(stack.account_id, stack.region, stack.stack_id)
    if found is None:
        return {}
    parsed = getattr(found.resource_map, "_parsed_resources", {})
    return {
        logical_id: parsed[logical_id].arn
        for logical_id in stack.of_type("AWS::Lambda::LayerVersion")
        if hasattr(parsed.get(logical_id), "arn")
    }


def _layer_version(clients: Callable[[str], Any], arn: str) -> None:
    name, version = arn.split(":")[-2:]
    lambda_client = clients("lambda")
    lambda_client.get_layer_version(LayerName=name, VersionNumber=int(version))
    lambda_client.delete_layer_version(LayerName=name, VersionNumber=int(version))


def _table(clients: Callable[[str], Any], name: str) -> None:
    clients("dynamodb").delete_table(TableName=name)


def _rest_api(clients: Callable[[str], Any], api_id: str) -> None:
    clients("apigateway").delete_rest_api(restApiId=api_id)


def _function(clients: Callable[[str], Any], name: str) -> None:
    clients("lambda").delete_function(FunctionName=name)


def _log_group(clients: Callable[[str], Any], name: str) -> None:
    clients("logs").delete_log_group(logGroupName=name)


def _role(clients: Callable[[str], Any], name: str) -> None:
    iam = clients("iam")
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for profile in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
        iam.remove_role_from_instance_profile(
            InstanceProfileName=profile["InstanceProfileName"], RoleName=name
        )
    iam.delete_role(RoleName=name)


def _managed_policy(clients: Callable[[str], Any], arn: str) -> None:
    iam = clients("iam")
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    for role in entities.get("PolicyRoles", []):
        iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
    for user in entities.get("PolicyUsers", []):
        iam.detach_user_policy(UserName=user["UserName"], PolicyArn=arn)
    for group in entities.get("PolicyGroups", []):
        iam.detach_group_policy(GroupName=group["GroupName"], PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)


_REMOVERS: dict[str, Callable[[Callable[[str], Any], str], None]] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::Lambda::LayerVersion": _layer_version,
    "AWS::ApiGateway::RestApi": _rest_api,
    "AWS::Lambda::Function": _function,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::IAM::Role": _role,
    "AWS::IAM::ManagedPolicy": _managed_policy,
}
