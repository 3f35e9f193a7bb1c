"""The IAM policies plldb's own commands need, for one account and region (docs/permissions.md).

`user_policy` is what `plldb attach` calls, statement for statement; the helper stack ships the
same document as PLLDBUserPolicy (a test keeps the two equal). `bootstrap_policy` is what
`plldb bootstrap setup/destroy` call directly plus what CloudFormation does with the caller's
rights while it creates the stack.
"""

from __future__ import annotations

from typing import Any

from plldb.bootstrap import names

DEFAULT_STAGE = "live"  # the helper stack's StageName default


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def user_policy(
    region: str,
    account_id: str,
    api_id: str = "*",
    stage: str = DEFAULT_STAGE,
    stack: str = names.STACK_NAME,
) -> dict[str, Any]:
    """Exactly the calls `plldb attach` makes (sts:GetCallerIdentity needs no permission)."""
    arn = _arns(region, account_id)
    return _document(
        # discovery: the plldb stack's outputs (ManagementAPIURL, WebSocketURL)
        _allow("ReadPlldbStackOutputs", ["cloudformation:DescribeStacks"],
               arn("cloudformation", f"stack/{stack}/*")),
        # the target stack (and its nested stacks) is only known at attach time
        _allow("ListTargetStackFunctions", ["cloudformation:ListStackResources"],
               arn("cloudformation", "stack/*/*")),
        _allow("CreateSession", ["execute-api:Invoke"],
               arn("execute-api", f"{api_id}/{stage}/POST/sessions")),
        _allow("Status", ["execute-api:Invoke"],
               arn("execute-api", f"{api_id}/{stage}/GET/sessions")),
        _allow("Detach", ["execute-api:Invoke"],
               arn("execute-api", f"{api_id}/{stage}/POST/sessions/detach")),
        # the restore report after detaching reads each instrumented function's configuration
        _allow("ReportRestore", ["lambda:GetFunctionConfiguration"],
               arn("lambda", "function:*")),
    )  # fmt: skip


def bootstrap_policy(region: str, account_id: str, stack: str = names.STACK_NAME) -> dict[str, Any]:
    """`plldb bootstrap setup/destroy`: the bucket, the stack, and what the template creates."""
    arn = _arns(region, account_id)
    part = partition_of(region)
    bucket = f"arn:{part}:s3:::{names.bucket_name(region, account_id)}"
    global_arn = _arns("", account_id, part)  # IAM ARNs name no region
    return _document(
        _allow("ArtifactBucket", [
            "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions",
            "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration",
            "s3:PutBucketPublicAccessBlock",
        ], bucket),
        _allow("ArtifactObjects", [
            "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
            "s3:DeleteObjectVersion",
        ], f"{bucket}/*"),
        _allow("HelperStack", [
            "cloudformation:CreateStack", "cloudformation:UpdateStack",
            "cloudformation:DeleteStack", "cloudformation:DescribeStacks",
            "cloudformation:DescribeStackEvents",
        ], arn("cloudformation", f"stack/{stack}/*")),
        # CloudFormation creates the stack's resources with the caller's rights.
        _allow("StackRoles", [
            "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:TagRole", "iam:UntagRole",
            "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:GetRolePolicy",
            "iam:UpdateAssumeRolePolicy",
        ], global_arn("iam", f"role/{stack}-*")),
        _allow("PassStackRoles", ["iam:PassRole"], global_arn("iam", f"role/{stack}-*"),
               {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}),
        _allow("StackManagedPolicies", [
            "iam:CreatePolicy", "iam:DeletePolicy", "iam:GetPolicy", "iam:CreatePolicyVersion",
            "iam:DeletePolicyVersion", "iam:ListPolicyVersions", "iam:GetPolicyVersion",
        ], global_arn("iam", f"policy/{stack}-*")),
        _allow("StackFunctions", [
            "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction",
            "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration", "lambda:AddPermission",
            "lambda:RemovePermission", "lambda:TagResource", "lambda:ListTags",
        ], arn("lambda", f"function:{stack}-*")),
        _allow("StackLayer", [
            "lambda:PublishLayerVersion", "lambda:DeleteLayerVersion", "lambda:GetLayerVersion",
        ], [arn("lambda", f"layer:{stack}-*"), arn("lambda", f"layer:{stack}-*:*")]),
        _allow("StackTables", [
            "dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable",
            "dynamodb:DescribeTable", "dynamodb:UpdateTimeToLive", "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateContinuousBackups", "dynamodb:DescribeContinuousBackups",
            "dynamodb:TagResource", "dynamodb:ListTagsOfResource",
        ], [arn("dynamodb", "table/PLLDBSessions"), arn("dynamodb", "table/PLLDBDebugger")]),
        # destroy first checks that no session still has functions instrumented
        _allow("CheckNothingInstrumented", ["dynamodb:Scan"],
               arn("dynamodb", "table/PLLDBSessions")),
        # API Gateway names its APIs by generated ids, unknown before the stack exists.
        _allow("StackApis", [
            "apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH",
            "apigateway:DELETE",
        ], f"arn:{part}:apigateway:{region}::/*"),
        _allow("StackLogGroups", [
            "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy",
            "logs:DeleteRetentionPolicy", "logs:TagResource", "logs:TagLogGroup",
        ], arn("logs", f"log-group:/aws/lambda/{stack}-*")),
        _allow("DescribeLogGroups", ["logs:DescribeLogGroups"], arn("logs", "log-group:*")),
        # The sweeper's schedule; CloudFormation names the rule after the stack.
        _allow("StackRules", [
            "events:PutRule", "events:DeleteRule", "events:DescribeRule", "events:PutTargets",
            "events:RemoveTargets", "events:EnableRule", "events:DisableRule",
        ], arn("events", f"rule/{stack}-*")),
    )  # fmt: skip


def _arns(region: str, account_id: str, partition: str | None = None) -> Any:
    def arn(service: str, rest: str) -> str:
        return f"arn:{partition or partition_of(region)}:{service}:{region}:{account_id}:{rest}"

    return arn


def _allow(
    sid: str, actions: list[str], resource: str | list[str], condition: dict | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions}
    statement["Resource"] = resource
    if condition:
        statement["Condition"] = condition
    return statement


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def policy_for(target: Any, bootstrap: bool = False) -> dict[str, Any]:
    """The policy for the target's account and region; the user policy names the deployed
    management API (and stage) when the helper stack can be read, else any API (`*`)."""
    if bootstrap:
        return bootstrap_policy(target.region, target.account_id)
    api_id, stage = "*", DEFAULT_STAGE
    try:
        from plldb.attach.discovery import read_plldb_stack

        outputs = read_plldb_stack(target).outputs
        api_id = outputs.get("ManagementAPIId") or api_id
        stage = outputs.get("ManagementAPIURL", "").rstrip("/").rpartition("/")[2] or stage
    except Exception:  # no stack yet, or not allowed to read it: the generic form still works
        api_id = "*"
    return user_policy(target.region, target.account_id, api_id, stage)
