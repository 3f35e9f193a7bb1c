"""Requests as botocore sends them, mapped to what IAM is asked."""

from urllib.parse import urlsplit

import boto3
import pytest

from plldb.local.gateway.sigv4 import SignedRequest
from plldb.local.iam.operations import read_operation
from plldb.local.iam.policy import RequestContext
from plldb.local.iam.requests import Scope, authorizations

ACCOUNT = "123456789012"
SCOPE = Scope(
    "eu-west-1",
    ACCOUNT,
    stack_id=lambda name: {
        "plldb": f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/plldb/1-2-3"
    }.get(name),
)


class _Sent(Exception):
    def __init__(self, request):
        self.request = request


def sent(service, operation, **params):
    """The HTTP request botocore would send for this call."""
    client = boto3.client(
        service,
        region_name="eu-west-1",
        endpoint_url="http://localhost:1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )

    def capture(request, **_):
        raise _Sent(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Sent) as caught:
        getattr(client, operation)(**params)
    request = caught.value.request
    url = urlsplit(request.url)
    body = request.body or b""
    headers = tuple(
        (k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
    )
    return SignedRequest(
        request.method,
        url.path,
        url.query,
        headers,
        body if isinstance(body, bytes) else body.encode(),
    )


def asked(service, operation, **params):
    found = authorizations(read_operation(service, sent(service, operation, **params)), SCOPE)
    return [(c.action, c.resource, dict(c.keys)) for c in found]


TABLE = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/PLLDBSessions"
FN = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:target"


def test_dynamodb_items_and_indexes():
    item = {"SessionId": {"S": "s"}}
    assert asked("dynamodb", "put_item", TableName="PLLDBSessions", Item=item) == [
        ("dynamodb:PutItem", TABLE, {})
    ]
    query = asked(
        "dynamodb",
        "query",
        TableName="PLLDBSessions",
        IndexName="GSI-StackName",
        KeyConditionExpression="StackName = :s",
        ExpressionAttributeValues={":s": {"S": "x"}},
    )
    assert query == [("dynamodb:Query", TABLE + "/index/GSI-StackName", {})]
    assert asked("dynamodb", "list_tables") == [("dynamodb:ListTables", "*", {})]


def test_dynamodb_batches_ask_for_every_table():
    batch = asked(
        "dynamodb",
        "batch_get_item",
        RequestItems={"B": {"Keys": [{"k": {"S": "1"}}]}, "A": {"Keys": [{"k": {"S": "1"}}]}},
    )
    assert [resource.rsplit("/", 1)[1] for _, resource, _ in batch] == ["A", "B"]


def test_lambda_functions_qualifiers_and_layers():
    assert asked("lambda", "invoke", FunctionName="target", Payload=b'{"FunctionName": "x"}') == [
        ("lambda:InvokeFunction", FN, {})
    ]
    assert asked("lambda", "invoke", FunctionName="target:live") == [
        ("lambda:InvokeFunction", FN + ":live", {})
    ]
    assert asked("lambda", "get_function_configuration", FunctionName=FN, Qualifier="3") == [
        ("lambda:GetFunctionConfiguration", FN + ":3", {})
    ]
    layer = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:plldb-debugger:2"
    assert asked(
        "lambda", "update_function_configuration", FunctionName="target", Layers=[layer]
    ) == [
        ("lambda:UpdateFunctionConfiguration", FN, {}),
        ("lambda:GetLayerVersion", layer, {}),
    ]
    assert asked("lambda", "get_layer_version", LayerName="plldb-debugger", VersionNumber=2) == [
        ("lambda:GetLayerVersion", layer, {})
    ]
    assert asked("lambda", "list_functions") == [("lambda:ListFunctions", "*", {})]


def test_lambda_create_function_passes_its_role():
    role = f"arn:aws:iam::{ACCOUNT}:role/fn"
    needed = asked(
        "lambda",
        "create_function",
        FunctionName="target",
        Role=role,
        Runtime="python3.12",
        Handler="h.h",
        Code={"ZipFile": b"x"},
    )
    assert needed == [("lambda:CreateFunction", FN, {}), ("iam:PassRole", role, {})]


def test_cloudformation_stacks_by_name_or_arn():
    stack = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/plldb/1-2-3"
    assert asked("cloudformation", "describe_stacks", StackName="plldb") == [
        ("cloudformation:DescribeStacks", stack, {})
    ]
    assert asked("cloudformation", "list_stack_resources", StackName="new") == [
        (
            "cloudformation:ListStackResources",
            f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/new/*",
            {},
        )
    ]
    assert asked("cloudformation", "describe_stacks") == [
        ("cloudformation:DescribeStacks", "*", {})
    ]


def test_sts_assume_role_names_the_role():
    role = f"arn:aws:iam::{ACCOUNT}:role/PLLDBDebuggerRole"
    assert asked("sts", "assume_role", RoleArn=role, RoleSessionName="relay") == [
        ("sts:AssumeRole", role, {})
    ]


def test_iam_attach_carries_the_policy_arn_condition_key():
    policy = f"arn:aws:iam::{ACCOUNT}:policy/PLLDBRelayPolicy"
    assert asked("iam", "attach_role_policy", RoleName="fn", PolicyArn=policy) == [
        ("iam:AttachRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/fn", {"iam:PolicyARN": policy})
    ]
    assert asked("iam", "get_policy", PolicyArn=policy) == [("iam:GetPolicy", policy, {})]
    assert asked(
        "iam", "create_role", RoleName="r", Path="/svc/", AssumeRolePolicyDocument="{}"
    ) == [("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/svc/r", {})]


def test_logs_groups_and_streams():
    group = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/f"
    assert asked("logs", "create_log_stream", logGroupName="/aws/lambda/f", logStreamName="s") == [
        ("logs:CreateLogStream", group + ":log-stream:s", {})
    ]
    assert asked("logs", "describe_log_groups") == [("logs:DescribeLogGroups", "*", {})]


# ---------------------------------------------------------------- S3: IAM's names, not moto's
BUCKET = "arn:aws:s3:::plldb-bucket"


@pytest.mark.parametrize(
    ("moto_action", "method", "query", "iam_action"),
    [
        ("HeadBucket", "HEAD", "", "s3:ListBucket"),  # S3 API Reference, HeadBucket
        ("CreateBucket", "PUT", "encryption", "s3:PutEncryptionConfiguration"),
        ("ListBucket", "GET", "encryption", "s3:GetEncryptionConfiguration"),
        ("PutPublicAccessBlock", "PUT", "publicAccessBlock", "s3:PutBucketPublicAccessBlock"),
        ("DeletePublicAccessBlock", "DELETE", "publicAccessBlock", "s3:PutBucketPublicAccessBlock"),
        ("PutBucketVersioning", "PUT", "versioning", "s3:PutBucketVersioning"),
        ("ListBucketVersions", "GET", "versions&prefix=a", "s3:ListBucketVersions"),
    ],
)  # fmt: skip
def test_s3_bucket_actions_are_iams(moto_action, method, query, iam_action):
    from plldb.local.iam.requests import s3_authorization

    assert s3_authorization(moto_action, BUCKET, method, query) == [
        RequestContext(iam_action, BUCKET)
    ]


def test_s3_delete_objects_asks_for_each_key_and_version():
    from plldb.local.iam.requests import s3_authorization

    body = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a/b</Key></Object>'
        b"<Object><Key>c</Key><VersionId>v1</VersionId></Object></Delete>"
    )
    assert s3_authorization("DeleteObject", BUCKET, "POST", "delete", body) == [
        RequestContext("s3:DeleteObject", f"{BUCKET}/a/b"),
        RequestContext("s3:DeleteObjectVersion", f"{BUCKET}/c"),
    ]


def test_s3_object_actions_keep_moto_names_that_are_iams():
    from plldb.local.iam.requests import s3_authorization

    assert s3_authorization("GetObject", f"{BUCKET}/k", "HEAD") == [
        RequestContext("s3:GetObject", f"{BUCKET}/k")
    ]
