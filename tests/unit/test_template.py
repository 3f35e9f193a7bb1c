"""What the template must hold, checked on the template itself: moto builds only part of it."""

from __future__ import annotations

import json

import pytest

from plldb.bootstrap.render import load_template
from plldb.resources import cloudformation_dir


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template((cloudformation_dir() / "template.yaml").read_text())


def _of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def test_cfn_lint_has_no_findings_including_informational():
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(
        cloudformation_dir() / "template.yaml", config=ManualArgs(include_checks=["I"])
    )
    assert [str(match) for match in matches] == []


def test_cfn_lint_does_find_problems_in_a_broken_template(tmp_path):
    """Guards the check above: a lint call that silently checks nothing would also return []."""
    from cfnlint.api import ManualArgs, lint_file

    broken = tmp_path / "broken.yaml"
    broken.write_text("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties: {Nope: 1}\n")
    assert lint_file(broken, config=ManualArgs(include_checks=["I"]))


def test_every_named_resource_exists_with_its_type(template):
    expected = {
        "PLLDBSessions": "AWS::DynamoDB::Table",
        "PLLDBDebugger": "AWS::DynamoDB::Table",
        "PLLDBServiceRole": "AWS::IAM::Role",
        "PLLDBDebuggerRole": "AWS::IAM::Role",
        "PLLDBManagerRole": "AWS::IAM::Role",
        "PLLDBAPI": "AWS::ApiGatewayV2::Api",
        "PLLDBManagementAPI": "AWS::ApiGateway::RestApi",
        "PLLDBDebuggerLayer": "AWS::Lambda::LayerVersion",
        "PLLDBRelayPolicy": "AWS::IAM::ManagedPolicy",
    }
    assert {k: template["Resources"][k]["Type"] for k in expected} == expected
    assert "Transform" not in template


def test_sessions_table(template):
    table = template["Resources"]["PLLDBSessions"]["Properties"]
    assert table["TableName"] == "PLLDBSessions"
    assert table["KeySchema"] == [{"AttributeName": "SessionId", "KeyType": "HASH"}]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"SessionId": "S", "ConnectionId": "S", "StackName": "S", "TTL": "N"}
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert [k["AttributeName"] for k in indexes["GSI-StackName"]["KeySchema"]] == [
        "StackName",
        "TTL",
    ]
    assert [k["AttributeName"] for k in indexes["GSI-ConnectionId"]["KeySchema"]] == [
        "ConnectionId",
        "SessionId",
    ]
    assert all(i["Projection"] == {"ProjectionType": "ALL"} for i in indexes.values())
    assert table["TimeToLiveSpecification"] == {"AttributeName": "TTL", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_debugger_table(template):
    table = template["Resources"]["PLLDBDebugger"]["Properties"]
    assert table["TableName"] == "PLLDBDebugger"
    assert table["KeySchema"] == [{"AttributeName": "RequestId", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"]["Enabled"] is True
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True


def _statements(role: dict) -> list[dict]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def test_roles_are_least_privilege(template):
    roles = _of_type(template, "AWS::IAM::Role")
    assert set(roles) == {
        "PLLDBServiceRole",
        "PLLDBDebuggerRole",
        "PLLDBManagerRole",
        "PLLDBInstrumentationRole",
        "PLLDBSweeperRole",
    }
    for name, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], name
        assert "RoleName" not in role["Properties"], f"{name}: IAM is global, a fixed name collides"
        statements = _statements(role)
        assert statements, name
        for statement in statements:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            for action in actions:
                assert "*" not in action, f"{name}: wildcard action {action}"
                if action == "iam:ListAttachedRolePolicies" and name == "PLLDBInstrumentationRole":
                    continue  # a read: does a target role hold PLLDBRelayPolicy already
                if action.startswith("iam:") and name == "PLLDBManagerRole":
                    # Reads only: who the caller is and what its policies allow.
                    assert action in ("iam:SimulatePrincipalPolicy", "iam:GetRole"), action
                    continue
                if action.startswith("iam:"):  # only ever PLLDBRelayPolicy, onto target roles
                    assert name == "PLLDBInstrumentationRole", f"{name}: {action}"
                    assert action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"), action
                    assert statement["Condition"] == {
                        "ArnEquals": {"iam:PolicyARN": {"Ref": "PLLDBRelayPolicy"}}
                    }
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            assert "*" not in resources, (
                f"{name}: statement {statement.get('Sid')} on every resource"
            )
            assert statement["Effect"] == "Allow"


def test_functions_have_roles_log_groups_with_retention_and_code_from_the_bucket(template):
    functions = _of_type(template, "AWS::Lambda::Function")
    handlers = {f["Properties"]["Handler"].split(".")[0] for f in functions.values()}
    modules = {
        path.stem
        for path in (cloudformation_dir() / "lambda_functions").glob("*.py")
        if not path.name.startswith("_")
    }
    assert handlers == modules  # one function per module, one module per function
    groups = {
        g["Properties"]["LogGroupName"]: g["Properties"]
        for g in _of_type(template, "AWS::Logs::LogGroup").values()
    }
    for logical_id, function in functions.items():
        properties = function["Properties"]
        assert properties["Runtime"].startswith("python3."), logical_id
        assert f"/aws/lambda/{properties['FunctionName']}" in groups, logical_id
        assert properties["Code"]["S3Bucket"] == {"Ref": "ArtifactBucket"}
        assert "Fn::GetAtt" in properties["Role"]
    assert all("RetentionInDays" in group for group in groups.values())


def test_websocket_api_routes_authorizer_and_permissions(template):
    api = template["Resources"]["PLLDBAPI"]["Properties"]
    assert api["ProtocolType"] == "WEBSOCKET"
    authorizers = _of_type(template, "AWS::ApiGatewayV2::Authorizer")
    (authorizer,) = authorizers.values()
    assert authorizer["Properties"]["AuthorizerType"] == "REQUEST"
    assert authorizer["Properties"]["IdentitySource"] == ["route.request.querystring.sessionId"]
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in _of_type(template, "AWS::ApiGatewayV2::Route").values()
    }
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    integrations = _of_type(template, "AWS::ApiGatewayV2::Integration")
    targets = {json.dumps(r["Target"]) for r in routes.values()}
    assert len(targets) == 3 and len(integrations) == 3  # one function per route
    for route in routes.values():
        integration_id = route["Target"]["Fn::Sub"].split("${")[1].rstrip("}")
        assert integration_id in integrations
    permissions = _of_type(template, "AWS::Lambda::Permission")
    permitted = {p["Properties"]["FunctionName"]["Ref"] for p in permissions.values()}
    # Every function API Gateway calls; the instrumentation function is invoked by $connect.
    assert permitted == set(_of_type(template, "AWS::Lambda::Function")) - {
        "PLLDBInstrumentationFunction"
    }
    assert _of_type(template, "AWS::ApiGatewayV2::Deployment")
    assert _of_type(template, "AWS::ApiGatewayV2::Stage")


def test_management_api_posts_sessions_and_detach_with_iam_auth(template):
    methods = _of_type(template, "AWS::ApiGateway::Method").values()
    assert sorted(m["Properties"]["HttpMethod"] for m in methods) == ["GET", "POST", "POST"]
    for method in methods:
        properties = method["Properties"]
        assert properties["AuthorizationType"] == "AWS_IAM"
        assert properties["Integration"]["Type"] == "AWS_PROXY"
    resources = _of_type(template, "AWS::ApiGateway::Resource").values()
    assert sorted(r["Properties"]["PathPart"] for r in resources) == ["detach", "sessions"]
    assert _of_type(template, "AWS::ApiGateway::Deployment")
    assert _of_type(template, "AWS::ApiGateway::Stage")


def test_layer_serves_python_3_9_to_3_13(template):
    layer = template["Resources"]["PLLDBDebuggerLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == [f"python3.{minor}" for minor in range(9, 14)]


def test_outputs_are_exported(template):
    outputs = template["Outputs"]
    for key in (
        "WebSocketURL",
        "ManagementAPIURL",
        "ManagementAPIId",
        "DebuggerLayerArn",
        "SessionsTableName",
        "DebuggerTableName",
    ):
        assert key in outputs
        assert outputs[key]["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{key}"}


def test_the_relay_policy_only_lets_a_role_assume_the_debugger_role(template):
    policy = template["Resources"]["PLLDBRelayPolicy"]["Properties"]["PolicyDocument"]
    assert policy["Statement"] == [
        {
            "Sid": "AssumeDebuggerRole",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": {"Fn::GetAtt": ["PLLDBDebuggerRole", "Arn"]},
        }
    ]
