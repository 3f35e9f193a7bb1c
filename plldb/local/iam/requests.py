"""What an operation asks IAM: the actions, the resources (ARNs) and the condition keys.

Only the services plldb and its tests use are mapped by their documented resource types
(Service Authorization Reference); any other operation is asked as `prefix:Operation` on "*".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from plldb.local.iam.operations import Operation
from plldb.local.iam.policy import RequestContext

_PREFIX = {"lambda": "lambda", "dynamodb": "dynamodb", "cloudformation": "cloudformation",
           "sts": "sts", "iam": "iam", "logs": "logs", "s3": "s3"}  # fmt: skip
# Operations whose IAM action is not named like the operation.
_ACTION = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "InvokeFunction",
    ("lambda", "GetLayerVersionByArn"): "GetLayerVersion",
}
_TRANSACT_VERBS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                   "Get": "GetItem", "ConditionCheck": "ConditionCheckItem"}  # fmt: skip
_QUALIFIED = re.compile(r"^(?P<function>.*:function:[^:]+|[^:]+)(?::(?P<qualifier>[^:]+))?$")


@dataclass(frozen=True)
class Scope:
    """Where the request is made, and how to name what only the backend knows."""

    region: str
    account_id: str
    stack_id: Callable[[str], str | None] = lambda name: None  # stack name -> its stack ARN


def authorizations(operation: Operation, scope: Scope) -> list[RequestContext]:
    """Every (action, resource, keys) the operation needs; all must be allowed."""
    prefix = _PREFIX.get(operation.service, operation.service)
    action = f"{prefix}:{_ACTION.get((operation.service, operation.name), operation.name)}"
    mapper = _MAPPERS.get(operation.service)
    if mapper is None:
        return [RequestContext(action, "*")]
    return mapper(action, operation.name, operation.params, scope)


def _arn(scope: Scope, service: str, rest: str, region: bool = True) -> str:
    return f"arn:aws:{service}:{scope.region if region else ''}:{scope.account_id}:{rest}"


def _dynamodb(action: str, name: str, params: Mapping[str, Any], scope: Scope) -> list:
    def table(table_name: str) -> str:
        if table_name.startswith("arn:"):
            return table_name
        return _arn(scope, "dynamodb", f"table/{table_name}")

    if "RequestItems" in params:  # BatchGetItem, BatchWriteItem
        return [RequestContext(action, table(t)) for t in sorted(params["RequestItems"])]
    if "TransactItems" in params:
        needed = []
        for item in params["TransactItems"]:
            for kind, body in item.items():  # Put, Update, Delete, ConditionCheck, Get
                verb = _TRANSACT_VERBS.get(kind, kind)
                needed.append(RequestContext(f"dynamodb:{verb}", table(body["TableName"])))
        return needed
    if "TableName" in params:
        arn = table(params["TableName"])
        if params.get("IndexName") and name in ("Query", "Scan"):
            arn = f"{arn}/index/{params['IndexName']}"
        return [RequestContext(action, arn)]
    if "ResourceArn" in params:
        return [RequestContext(action, params["ResourceArn"])]
    return [RequestContext(action, "*")]


def _lambda(action: str, name: str, params: Mapping[str, Any], scope: Scope) -> list:
    needed = []
    if "FunctionName" in params:
        match = _QUALIFIED.match(params["FunctionName"])
        function, qualifier = (match["function"], match["qualifier"]) if match else ("", None)
        if not function.startswith("arn:"):
            account = scope.account_id
            if ":function:" in function:  # a partial ARN, ACCOUNT:function:NAME
                account, _, function = function.partition(":function:")
            function = f"arn:aws:lambda:{scope.region}:{account}:function:{function}"
        qualifier = params.get("Qualifier") or qualifier
        needed.append(RequestContext(action, f"{function}:{qualifier}" if qualifier else function))
    elif "LayerName" in params:
        layer = params["LayerName"]
        if not layer.startswith("arn:"):
            layer = _arn(scope, "lambda", f"layer:{layer}")
        version = params.get("VersionNumber")
        needed.append(RequestContext(action, f"{layer}:{version}" if version else layer))
    elif "Arn" in params:  # GetLayerVersionByArn
        needed.append(RequestContext(action, params["Arn"]))
    elif "Resource" in params:  # tags
        needed.append(RequestContext(action, params["Resource"]))
    else:
        needed.append(RequestContext(action, "*"))
    # Lambda checks that the caller may use each layer and hand over the role it names.
    for layer in params.get("Layers") or []:
        needed.append(RequestContext("lambda:GetLayerVersion", layer))
    if params.get("Role") and name in ("CreateFunction", "UpdateFunctionConfiguration"):
        needed.append(RequestContext("iam:PassRole", params["Role"]))
    return needed


def _cloudformation(action: str, name: str, params: Mapping[str, Any], scope: Scope) -> list:
    stack = params.get("StackName")
    if not stack:
        return [RequestContext(action, "*")]
    if not stack.startswith("arn:"):
        # A stack's ARN ends in its id; a stack not created yet has none, so "*" stands in.
        stack = scope.stack_id(stack) or _arn(scope, "cloudformation", f"stack/{stack}/*")
    return [RequestContext(action, stack)]


def _sts(action: str, name: str, params: Mapping[str, Any], scope: Scope) -> list:
    if params.get("RoleArn"):
        keys = {}
        if params.get("DurationSeconds"):
            keys["sts:DurationSeconds"] = params["DurationSeconds"]
        return [RequestContext(action, params["RoleArn"], keys)]
    return [RequestContext(action, "*")]


def _iam(action: str, name: str, params: Mapping[str, Any], scope: Scope) -> list:
    def iam_arn(kind: str, value: str) -> str:
        path = params.get("Path", "/") if name.startswith("Create") else "/"
        return f"arn:aws:iam::{scope.account_id}:{kind}{path}{value}"

    if name == "SimulatePrincipalPolicy" and params.get("PolicySourceArn"):
        return [RequestContext(action, params["PolicySourceArn"])]
    keys = {}
    if params.get("PolicyArn") and name.startswith(("Attach", "Detach")):
        keys["iam:PolicyARN"] = params["PolicyArn"]
    for member, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group"),
                         ("InstanceProfileName", "instance-profile")):  # fmt: skip
        if params.get(member):
            return [RequestContext(action, iam_arn(kind, params[member]), keys)]
    if params.get("PolicyArn"):
        return [RequestContext(action, params["PolicyArn"], keys)]
    if params.get("PolicyName") and name == "CreatePolicy":
        return [RequestContext(action, iam_arn("policy", params["PolicyName"]))]
    return [RequestContext(action, "*")]


def _logs(action: str, name: str, params: Mapping[str, Any], scope: Scope) -> list:
    group = params.get("logGroupName")
    if not group:
        return [RequestContext(action, "*")]
    arn = _arn(scope, "logs", f"log-group:{group}")
    if params.get("logStreamName"):
        return [RequestContext(action, f"{arn}:log-stream:{params['logStreamName']}")]
    return [RequestContext(action, arn)]


# moto's S3 names that are not IAM's (Service Authorization Reference, "Actions defined by
# Amazon S3", and each API's "Permissions" section in the S3 API Reference).
_S3_ACTIONS = {
    "HeadBucket": "ListBucket",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
}
# Bucket sub-resources moto's table lacks (it then names the method's default action).
_S3_SUBRESOURCES = {
    ("GET", "encryption"): "GetEncryptionConfiguration",
    ("PUT", "encryption"): "PutEncryptionConfiguration",
    ("DELETE", "encryption"): "PutEncryptionConfiguration",
    ("GET", "ownershipControls"): "GetBucketOwnershipControls",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("DELETE", "ownershipControls"): "PutBucketOwnershipControls",
    ("GET", "object-lock"): "GetBucketObjectLockConfiguration",
    ("PUT", "object-lock"): "PutBucketObjectLockConfiguration",
    ("GET", "replication"): "GetReplicationConfiguration",
    ("PUT", "replication"): "PutReplicationConfiguration",
    ("DELETE", "replication"): "PutReplicationConfiguration",
}


def s3_authorization(
    action: str, resource: str, method: str = "", query: str = "", body: bytes = b""
) -> list[RequestContext]:
    """S3: moto names the action and the bucket or object ARN; IAM's names where they differ.

    DeleteObjects asks s3:DeleteObject (s3:DeleteObjectVersion for a version) on each key.
    """
    names = {part.partition("=")[0] for part in query.split("&") if part}
    if method == "POST" and "delete" in names and ":::" in resource and "/" not in resource:
        return _delete_objects(resource, body)
    if resource.count("/") == 0:  # a bucket, not an object
        for name in names:
            action = _S3_SUBRESOURCES.get((method, name), action)
    return [RequestContext(f"s3:{_S3_ACTIONS.get(action, action)}", resource)]


def _delete_objects(bucket_arn: str, body: bytes) -> list[RequestContext]:
    from xml.etree import ElementTree

    needed = []
    # The body was signed by a caller the enforcer already authenticated; moto parses it too.
    for element in ElementTree.fromstring(body or b"<Delete/>").iter():  # noqa: S314
        if not element.tag.endswith("Object"):
            continue
        fields = {child.tag.rpartition("}")[2]: child.text or "" for child in element}
        action = "s3:DeleteObjectVersion" if fields.get("VersionId") else "s3:DeleteObject"
        needed.append(RequestContext(action, f"{bucket_arn}/{fields.get('Key', '')}"))
    return needed or [RequestContext("s3:DeleteObject", f"{bucket_arn}/*")]


_MAPPERS: dict[str, Callable[[str, str, Mapping[str, Any], Scope], list]] = {
    "dynamodb": _dynamodb,
    "lambda": _lambda,
    "cloudformation": _cloudformation,
    "sts": _sts,
    "iam": _iam,
    "logs": _logs,
}
