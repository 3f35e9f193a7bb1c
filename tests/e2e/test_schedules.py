"""Scheduled rules through the offline cloud: a scaled clock, real functions, real records."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from plldb.local.cloud import OfflineCloud
from tests.e2e.schedule_fixture.deploy import deploy
from tests.e2e.support import client, wait_for
from tests.e2e.support import outputs as outputs_of

pytestmark = pytest.mark.e2e

STACK = "schedules"
SCALE = 60.0  # one scheduled minute per real second


@pytest.fixture(scope="module")
def cloud():
    with OfflineCloud(poll_seconds=0.2, schedule_scale=SCALE) as running:
        deploy(running.environment(), STACK)
        yield running


def _rule(cloud, logical_id):
    """(name, ARN) of one of the stack's rules, as EventBridge knows it."""
    cfn = client(cloud, "cloudformation")
    name = cfn.describe_stack_resource(StackName=STACK, LogicalResourceId=logical_id)[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    return name, client(cloud, "events").describe_rule(Name=name)["Arn"]


def _records(cloud):
    table = outputs_of(cloud, STACK)["RecordsTable"]
    items = client(cloud, "dynamodb").scan(TableName=table)["Items"]
    ordered = sorted(items, key=lambda item: float(item["At"]["N"]))
    return [(float(item["At"]["N"]), json.loads(item["Event"]["S"])) for item in ordered]


def _from_rule(cloud, arn, since=0.0):
    return [
        event
        for at, event in _records(cloud)
        if at >= since and isinstance(event, dict) and event.get("resources") == [arn]
    ]


def test_a_rule_on_rate_1_minute_runs_every_scaled_minute(cloud):
    _, arn = _rule(cloud, "FastRule")
    assert wait_for(lambda: len(_from_rule(cloud, arn)) >= 2, timeout=15), _records(cloud)
    events = _from_rule(cloud, arn)
    for event in events:
        assert set(event) == {
            "version", "id", "detail-type", "source", "account", "time", "region",
            "resources", "detail",
        }  # fmt: skip
        assert event["version"] == "0"
        assert event["detail-type"] == "Scheduled Event"
        assert event["source"] == "aws.events"
        assert event["account"] == "123456789012"
        assert event["region"] == cloud.region
        assert event["detail"] == {}
        moment = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        assert now - timedelta(minutes=2) < moment <= now
    assert len({event["id"] for event in events}) == len(events)


def test_disabled_and_unpermitted_rules_never_invoke(cloud):
    _, fast = _rule(cloud, "FastRule")
    disabled_name, disabled = _rule(cloud, "DisabledRule")
    unpermitted_name, unpermitted = _rule(cloud, "UnpermittedRule")
    started = len(_from_rule(cloud, fast))
    # Three runs of the fast rule: the clock is going, and so would the other two.
    assert wait_for(lambda: len(_from_rule(cloud, fast)) >= started + 3, timeout=15)
    assert _from_rule(cloud, disabled) == []
    assert _from_rule(cloud, unpermitted) == []
    assert cloud.fire_schedule(disabled_name) == []
    (outcome,) = cloud.fire_schedule(unpermitted_name)
    assert not outcome.invoked and "no Lambda permission" in outcome.reason
    time.sleep(1)
    assert _from_rule(cloud, unpermitted) == []


def test_a_targets_input_replaces_the_event(cloud):
    wanted = {"from": "input-rule", "n": 1}
    # cron(0/2 * * * ? *): every other scaled minute, so about every two seconds.
    assert wait_for(lambda: [e for _, e in _records(cloud) if e == wanted], timeout=15)


def test_a_rule_can_be_fired_now(cloud):
    name, _ = _rule(cloud, "DailyRule")  # rate(1 day): a day is 24 minutes at this scale
    since = time.time()
    (outcome,) = cloud.fire_schedule(name)
    assert outcome.invoked, outcome
    # Its target's InputPath picks the detail-type out of the event.
    assert wait_for(
        lambda: [e for at, e in _records(cloud) if at >= since and e == "Scheduled Event"],
        timeout=10,
    )


def test_a_scheduler_schedule_runs_under_its_role_and_not_without_rights(cloud):
    iam, scheduler = client(cloud, "iam"), client(cloud, "scheduler")
    function = outputs_of(cloud, STACK)["FunctionArn"]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "scheduler.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    invoke = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function}
            ],
        }
    )
    allowed = iam.create_role(RoleName="scheduler-invoke", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName="scheduler-invoke", PolicyName="invoke", PolicyDocument=invoke)
    bare = iam.create_role(RoleName="scheduler-bare", AssumeRolePolicyDocument=trust)
    for name, role, payload in (
        ("every-minute", allowed, {"from": "schedule"}),
        ("no-rights", bare, {"from": "bare"}),
    ):
        scheduler.create_schedule(
            Name=name,
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": function, "RoleArn": role["Role"]["Arn"], "Input": json.dumps(payload)},
        )
    try:
        assert wait_for(
            lambda: len([e for _, e in _records(cloud) if e == {"from": "schedule"}]) >= 2,
            timeout=15,
        )
        assert [e for _, e in _records(cloud) if e == {"from": "bare"}] == []
        (outcome,) = cloud.fire_schedule("no-rights")
        assert not outcome.invoked and "not allowed lambda:InvokeFunction" in outcome.reason
    finally:
        scheduler.delete_schedule(Name="every-minute")
        scheduler.delete_schedule(Name="no-rights")


SCHEDULE_TEMPLATE = """
Parameters:
  FunctionArn: {Type: String}
  Payload: {Type: String}
Resources:
  InvokeRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: scheduler.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: invoke
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - {Effect: Allow, Action: lambda:InvokeFunction, Resource: !Ref FunctionArn}
  Every:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: rate(1 minute)
      FlexibleTimeWindow: {Mode: "OFF"}
      Target: {Arn: !Ref FunctionArn, RoleArn: !GetAtt InvokeRole.Arn, Input: !Ref Payload}
Outputs:
  Name: {Value: !Ref Every}  # moto fails a CreateStack whose outputs !GetAtt a type it lacks
"""


def test_a_templates_scheduler_schedule_runs_follows_updates_and_goes_with_its_stack(cloud):
    cfn, scheduler = client(cloud, "cloudformation"), client(cloud, "scheduler")
    function = outputs_of(cloud, STACK)["FunctionArn"]

    def deploy_schedules(payload: dict, create: bool) -> dict:
        (cfn.create_stack if create else cfn.update_stack)(
            StackName="template-schedules",
            TemplateBody=SCHEDULE_TEMPLATE,
            Parameters=[
                {"ParameterKey": "FunctionArn", "ParameterValue": function},
                {"ParameterKey": "Payload", "ParameterValue": json.dumps(payload)},
            ],
            Capabilities=["CAPABILITY_IAM"],
        )
        return outputs_of(cloud, "template-schedules")

    def received(payload: dict, since: float) -> int:
        return len([e for at, e in _records(cloud) if at >= since and e == payload])

    since = time.time()
    made = deploy_schedules({"from": "template"}, create=True)
    found = scheduler.get_schedule(Name=made["Name"])
    role = client(cloud, "cloudformation").describe_stack_resource(
        StackName="template-schedules", LogicalResourceId="InvokeRole"
    )["StackResourceDetail"]["PhysicalResourceId"]
    assert found["Target"]["RoleArn"].endswith(f":role/{role}")  # !GetAtt resolved
    assert found["ScheduleExpression"] == "rate(1 minute)"
    assert wait_for(lambda: received({"from": "template"}, since) >= 2, timeout=15)

    since = time.time()
    assert deploy_schedules({"from": "updated"}, create=False)["Name"] == made["Name"]
    assert wait_for(lambda: received({"from": "updated"}, since) >= 1, timeout=15)

    cfn.delete_stack(StackName="template-schedules")
    cfn.get_waiter("stack_delete_complete").wait(StackName="template-schedules")
    assert [s["Name"] for s in scheduler.list_schedules()["Schedules"]] == []
    assert [job for job in cloud.scheduler.jobs() if job.kind == "schedule"] == []


def test_rules_follow_stack_updates_and_deletes(cloud):
    deploy(cloud.environment(), STACK, fast_state="DISABLED")
    _, fast = _rule(cloud, "FastRule")
    time.sleep(0.5)  # an invocation already started may still land
    since = time.time()
    time.sleep(3)
    assert _from_rule(cloud, fast, since) == []

    deploy(cloud.environment(), STACK, fast_state="ENABLED")
    _, fast = _rule(cloud, "FastRule")
    since = time.time()
    assert wait_for(lambda: len(_from_rule(cloud, fast, since)) >= 2, timeout=15)

    cfn = client(cloud, "cloudformation")
    cfn.delete_stack(StackName=STACK)
    cfn.get_waiter("stack_delete_complete").wait(StackName=STACK)
    assert client(cloud, "events").list_rules()["Rules"] == []
    assert cloud.scheduler.jobs() == []  # off the clock as soon as the delete completes
