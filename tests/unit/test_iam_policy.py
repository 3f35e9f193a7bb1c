"""The evaluator against the rules of "Policy evaluation logic" (IAM User Guide)."""

import json

import pytest

from plldb.local.iam.policy import (
    Caller,
    Decision,
    RequestContext,
    evaluate,
    resource_matches,
    trust_decision,
)

TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/PLLDBSessions"


def allow(action, resource="*", **extra):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}],
    }


def deny(action, resource="*", **extra):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": action, "Resource": resource, **extra}],
    }


def ask(action, resource=TABLE, **keys):
    return RequestContext(action, resource, keys)


def test_no_policy_is_an_implicit_deny():
    assert evaluate([], ask("dynamodb:GetItem")) is Decision.IMPLICIT_DENY


def test_an_allow_on_the_resource_allows():
    assert evaluate([allow("dynamodb:GetItem", TABLE)], ask("dynamodb:GetItem")).allowed


def test_an_explicit_deny_wins_over_any_allow_in_any_policy():
    policies = [allow("*"), deny("dynamodb:*", TABLE)]
    assert evaluate(policies, ask("dynamodb:GetItem")) is Decision.EXPLICIT_DENY
    assert evaluate(list(reversed(policies)), ask("dynamodb:GetItem")) is Decision.EXPLICIT_DENY


def test_another_action_or_resource_is_not_covered():
    policies = [allow("dynamodb:GetItem", TABLE)]
    assert evaluate(policies, ask("dynamodb:PutItem")) is Decision.IMPLICIT_DENY
    assert evaluate(policies, ask("dynamodb:GetItem", TABLE + "x")) is Decision.IMPLICIT_DENY
    assert evaluate(policies, ask("dynamodb:GetItem", TABLE + "/index/I")) is Decision.IMPLICIT_DENY


def test_actions_are_case_insensitive_and_resources_case_sensitive():
    policies = [allow("DynamoDB:getitem", TABLE)]
    assert evaluate(policies, ask("dynamodb:GetItem")).allowed
    assert not evaluate(policies, ask("dynamodb:GetItem", TABLE.lower())).allowed


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:*",
            "arn:aws:lambda:eu-west-1:123456789012:function:f",
            True,
        ),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:*",
            "arn:aws:lambda:eu-west-1:123456789012:function:f:3",
            True,
        ),
        (
            "arn:aws:lambda:eu-west-1:*:layer:*:*",
            "arn:aws:lambda:eu-west-1:999999999999:layer:l:2",
            True,
        ),
        (
            "arn:aws:lambda:eu-west-1:*:layer:*:*",
            "arn:aws:lambda:eu-west-1:999999999999:layer:l",
            False,
        ),
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-1", True),
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-12", False),
        ("arn:aws:s3:::b[1]", "arn:aws:s3:::b1", False),  # no character classes in IAM
        ("*", "*", True),
        ("arn:aws:s3:::*", "*", False),
    ],
)
def test_resource_wildcards(pattern, resource, expected):
    assert resource_matches(pattern, resource) is expected


def test_not_action_allows_everything_else():
    policy = {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    assert evaluate([policy], ask("dynamodb:GetItem")).allowed
    assert not evaluate([policy], ask("iam:CreateUser", "*")).allowed


def test_not_resource_denies_everything_but_the_listed():
    policy = {"Statement": [
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:*", "NotResource": TABLE},
    ]}  # fmt: skip
    assert evaluate([policy], ask("dynamodb:GetItem")).allowed
    assert evaluate([policy], ask("dynamodb:GetItem", TABLE + "2")) is Decision.EXPLICIT_DENY


def test_policies_arrive_as_json_or_url_encoded_text():
    text = json.dumps(allow("dynamodb:GetItem", TABLE))
    encoded = text.replace(" ", "%20").replace('"', "%22").replace("{", "%7B").replace("}", "%7D")
    assert evaluate([text], ask("dynamodb:GetItem")).allowed
    assert evaluate([encoded], ask("dynamodb:GetItem")).allowed


def test_a_single_statement_object_is_a_statement_list():
    policy = {
        "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    }
    assert evaluate([policy], ask("s3:GetObject", "arn:aws:s3:::b/k")).allowed


RELAY = "arn:aws:iam::123456789012:policy/PLLDBRelayPolicy"
ROLE = "arn:aws:iam::123456789012:role/target"


def attach_policy(operator="ArnEquals"):
    return allow(["iam:AttachRolePolicy"], "arn:aws:iam::123456789012:role/*",
                 Condition={operator: {"iam:PolicyARN": RELAY}})  # fmt: skip


@pytest.mark.parametrize("operator", ["ArnEquals", "ArnLike", "StringEquals", "StringLike"])
def test_a_condition_on_the_attached_policy(operator):
    policies = [attach_policy(operator)]
    assert evaluate(policies, ask("iam:AttachRolePolicy", ROLE, **{"iam:PolicyARN": RELAY})).allowed
    other = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert not evaluate(
        policies, ask("iam:AttachRolePolicy", ROLE, **{"iam:PolicyARN": other})
    ).allowed


def test_condition_key_names_are_case_insensitive():
    assert evaluate(
        [attach_policy()], ask("iam:AttachRolePolicy", ROLE, **{"IAM:policyarn": RELAY})
    ).allowed


def test_a_missing_key_fails_a_positive_operator_and_passes_a_negated_one():
    assert not evaluate([attach_policy()], ask("iam:AttachRolePolicy", ROLE)).allowed
    negated = allow(
        "iam:AttachRolePolicy", "*", Condition={"ArnNotEquals": {"iam:PolicyARN": RELAY}}
    )
    assert evaluate([negated], ask("iam:AttachRolePolicy", ROLE)).allowed
    if_exists = allow(
        "iam:AttachRolePolicy", "*", Condition={"ArnEqualsIfExists": {"iam:PolicyARN": RELAY}}
    )
    assert evaluate([if_exists], ask("iam:AttachRolePolicy", ROLE)).allowed


def test_unknown_keys_are_absent_so_a_deny_on_not_equals_applies():
    guard = deny("*", "*", Condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-123"}})
    assert evaluate([allow("*"), guard], ask("dynamodb:GetItem")) is Decision.EXPLICIT_DENY


def test_several_values_are_or_and_several_keys_are_and():
    regions = ["eu-west-1", "us-east-1"]
    policy = allow("s3:GetObject", "*", Condition={
        "StringEquals": {"aws:RequestedRegion": regions, "s3:prefix": "a/"}})  # fmt: skip
    both = {"aws:RequestedRegion": "us-east-1", "s3:prefix": "a/"}
    assert evaluate([policy], ask("s3:GetObject", "*", **both)).allowed
    assert not evaluate([policy], ask("s3:GetObject", "*", **{**both, "s3:prefix": "b/"})).allowed


def test_bool_numeric_and_null():
    tls = allow("s3:*", "*", Condition={"Bool": {"aws:SecureTransport": "true"}})
    assert evaluate([tls], ask("s3:GetObject", "*", **{"aws:SecureTransport": True})).allowed
    assert not evaluate([tls], ask("s3:GetObject", "*", **{"aws:SecureTransport": False})).allowed
    short = allow(
        "sts:AssumeRole", "*", Condition={"NumericLessThanEquals": {"sts:DurationSeconds": "3600"}}
    )
    assert evaluate([short], ask("sts:AssumeRole", "*", **{"sts:DurationSeconds": 900})).allowed
    assert not evaluate(
        [short], ask("sts:AssumeRole", "*", **{"sts:DurationSeconds": 7200})
    ).allowed
    absent = allow("s3:*", "*", Condition={"Null": {"s3:x-amz-acl": "true"}})
    assert evaluate([absent], ask("s3:PutObject", "*")).allowed
    assert not evaluate(
        [absent], ask("s3:PutObject", "*", **{"s3:x-amz-acl": "public-read"})
    ).allowed


def test_for_all_and_for_any_values():
    any_tag = allow(
        "s3:*", "*", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}
    )
    all_tags = allow(
        "s3:*", "*", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}
    )
    assert evaluate([any_tag], ask("s3:PutObject", "*", **{"aws:TagKeys": ["a", "z"]})).allowed
    assert not evaluate([all_tags], ask("s3:PutObject", "*", **{"aws:TagKeys": ["a", "z"]})).allowed
    assert evaluate([all_tags], ask("s3:PutObject", "*", **{"aws:TagKeys": ["b"]})).allowed


def test_an_unknown_operator_grants_nothing():
    odd = allow("s3:*", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    assert not evaluate([odd], ask("s3:GetObject", "*", **{"aws:SourceIp": "10.0.0.1"})).allowed


ROOT = "arn:aws:iam::123456789012:root"
ACCOUNT_TRUST = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                "Principal": {"AWS": ROOT}}]}  # fmt: skip
LAMBDA_TRUST = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
ASSUME = RequestContext("sts:AssumeRole", ROLE)


def test_an_account_trust_needs_the_identity_policy_too():
    caller = Caller("arn:aws:iam::123456789012:role/fn", "123456789012")
    assert trust_decision(ACCOUNT_TRUST, caller, ASSUME) == (Decision.ALLOW, False)
    stranger = Caller("arn:aws:iam::999999999999:role/fn", "999999999999")
    assert trust_decision(ACCOUNT_TRUST, stranger, ASSUME) == (Decision.IMPLICIT_DENY, False)


def test_a_trust_naming_the_caller_grants_by_itself():
    caller = Caller("arn:aws:iam::123456789012:user/dev", "123456789012")
    named = {
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": [caller.arn]}}
        ]
    }
    assert trust_decision(named, caller, ASSUME) == (Decision.ALLOW, True)


def test_a_service_trust_admits_only_that_service():
    lambda_service = Caller("lambda.amazonaws.com", "123456789012", service="lambda.amazonaws.com")
    assert trust_decision(LAMBDA_TRUST, lambda_service, ASSUME)[0].allowed
    user = Caller("arn:aws:iam::123456789012:user/dev", "123456789012")
    assert not trust_decision(LAMBDA_TRUST, user, ASSUME)[0].allowed
