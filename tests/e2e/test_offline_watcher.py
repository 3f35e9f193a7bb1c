"""The offline cloud's watcher never repairs a stack while moto is changing it.

A repair made in the middle of moto's update mixes the old parameters with new resources
(once seen as a published version that kept the old variables for good). The watcher is slowed
to once an hour; each test runs a sync at the moment the real watcher could have.
"""

from __future__ import annotations

import threading

import pytest

from plldb.bootstrap.packaging import build_zip
from plldb.local.cloud import OfflineCloud
from tests.e2e.support import client

pytestmark = pytest.mark.e2e

TEMPLATE = """
Parameters:
  Label: {Type: String}
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
  Labelled:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: !Sub "${AWS::StackName}-labelled"
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt Role.Arn
      Code: {S3Bucket: watched-code, S3Key: index.zip}  # moto cannot update an inline ZipFile
      Environment:
        Variables: {LABEL: !Ref Label}
"""


@pytest.fixture(scope="module")
def cloud():
    with OfflineCloud(poll_seconds=3600) as running:
        s3 = client(running, "s3")
        s3.create_bucket(
            Bucket="watched-code", CreateBucketConfiguration={"LocationConstraint": running.region}
        )
        code = b"def handler(event, context):\n    return 'ok'\n"
        s3.put_object(
            Bucket="watched-code", Key="index.zip", Body=build_zip([("index.py", code, 0o644)])
        )
        yield running


class _Moto:
    """Marks while moto updates the function resource, and repairs that run meanwhile."""

    def __init__(self, cloud: OfflineCloud, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.awslambda.models import LambdaFunction

        self.changing = threading.Event()
        self.during_change: list[str] = []
        self.repairs: list[str] = []
        self.repair_begun = threading.Event()
        self.hold_for_repair = False  # keep moto mid-change until a repair has begun (or 2 s)
        original_update = LambdaFunction.update_from_cloudformation_json.__func__
        original_repair = cloud._repairer.repair

        def update(cls, *args, **kwargs):
            self.changing.set()
            try:
                self.tick()
                if self.hold_for_repair:
                    self.repair_begun.wait(timeout=2.0)
                return original_update(cls, *args, **kwargs)
            finally:
                self.changing.clear()

        def repair(stack, endpoints):
            self.repairs.append(stack.name)
            self.repair_begun.set()
            if self.changing.is_set():
                self.during_change.append(stack.name)
            return original_repair(stack, endpoints)

        monkeypatch.setattr(LambdaFunction, "update_from_cloudformation_json", classmethod(update))
        monkeypatch.setattr(cloud._repairer, "repair", repair)
        self.tick = lambda: None  # what the watcher does while moto updates the function


def _arguments(name: str, label: str) -> dict:
    return {
        "StackName": name,
        "TemplateBody": TEMPLATE,
        "Parameters": [{"ParameterKey": "Label", "ParameterValue": label}],
        "Capabilities": ["CAPABILITY_IAM"],
    }


def _label(cloud: OfflineCloud, name: str) -> str:
    config = client(cloud, "lambda").get_function_configuration(FunctionName=f"{name}-labelled")
    return config["Environment"]["Variables"]["LABEL"]


def test_a_sync_during_a_change_set_leaves_the_stack_to_its_settle(cloud, monkeypatch):
    cfn = client(cloud, "cloudformation")
    cfn.create_stack(**_arguments("watched-change-set", "one"))
    moto = _Moto(cloud, monkeypatch)
    moto.tick = cloud.sync  # the watcher wakes while the change set is being applied
    cfn.create_change_set(
        **_arguments("watched-change-set", "two"), ChangeSetName="two", ChangeSetType="UPDATE"
    )
    cfn.execute_change_set(ChangeSetName="two", StackName="watched-change-set")
    assert moto.during_change == []
    assert "watched-change-set" in moto.repairs  # the settle hook repaired it, after the change
    assert _label(cloud, "watched-change-set") == "two"


def test_an_update_waits_for_a_sync_that_read_the_stack_before_it(cloud, monkeypatch):
    cfn = client(cloud, "cloudformation")
    cfn.create_stack(**_arguments("watched-update", "one"))
    moto = _Moto(cloud, monkeypatch)
    moto.hold_for_repair = True
    updating = threading.Thread(
        target=lambda: client(cloud, "cloudformation").update_stack(
            **_arguments("watched-update", "two")
        ),
        daemon=True,
    )
    read_before = cloud._latest_event

    def latest_event(stack_id: str) -> str:
        # The watcher has read the stack (still CREATE_COMPLETE); now the update begins. moto
        # must not reach the function before this sync is over: give it a second to try.
        if not updating.is_alive() and not updating.ident:
            updating.start()
            moto.changing.wait(timeout=1.0)
        return read_before(stack_id)

    monkeypatch.setattr(cloud, "_latest_event", latest_event)
    cloud.sync()
    updating.join(timeout=30)
    assert not updating.is_alive()
    assert moto.during_change == []
    assert _label(cloud, "watched-update") == "two"
