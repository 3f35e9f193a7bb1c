"""The scheduled event, a target's Input and InputPath, and the Lambda permission check."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from plldb.local.schedule_targets import (
    Target,
    TargetError,
    events_may_invoke,
    payload_for,
    scheduled_event,
)

RULE = "arn:aws:events:eu-west-1:123456789012:rule/every-minute"
FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:sweep"
MOMENT = datetime(2024, 2, 1, 10, 0, 5, 123456, tzinfo=timezone.utc)


def _event():
    return scheduled_event(RULE, "123456789012", "eu-west-1", MOMENT)


def test_the_event_is_eventbridges_scheduled_event():
    event = _event()
    assert event.pop("id") != _event()["id"]
    assert event == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2024-02-01T10:00:05Z",
        "region": "eu-west-1",
        "resources": [RULE],
        "detail": {},
    }


def test_without_input_the_target_gets_the_event():
    event = _event()
    assert json.loads(payload_for(Target("t", FUNCTION), event)) == event


def test_input_replaces_the_event():
    payload = payload_for(Target("t", FUNCTION, input='{"sweep": true}'), _event())
    assert json.loads(payload) == {"sweep": True}


def test_input_path_selects_part_of_the_event():
    event = _event()
    assert json.loads(payload_for(Target("t", FUNCTION, input_path="$.detail"), event)) == {}
    assert json.loads(payload_for(Target("t", FUNCTION, input_path="$"), event)) == event


@pytest.mark.parametrize(
    "target",
    [
        Target("t", FUNCTION, input="{not json"),
        Target("t", FUNCTION, input_path="$.nothing"),
        Target("t", FUNCTION, input_path="$.resources[0]"),
        Target("t", FUNCTION, input_transformer=True),
    ],
)
def test_what_is_not_delivered_says_why(target):
    with pytest.raises(TargetError):
        payload_for(target, _event())


def _policy(**statement):
    base = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": FUNCTION,
        "Condition": {"ArnLike": {"AWS:SourceArn": RULE}},
    }
    return {"Version": "2012-10-17", "Statement": [{**base, **statement}]}


def test_a_permission_for_the_rule_lets_events_invoke():
    assert events_may_invoke(_policy(), FUNCTION, RULE, "123456789012")


@pytest.mark.parametrize(
    "policy",
    [
        None,
        _policy(Condition={"ArnLike": {"AWS:SourceArn": RULE + "-other"}}),
        _policy(Principal={"Service": "s3.amazonaws.com"}),
        _policy(Action="lambda:GetFunction"),
        _policy(Resource=FUNCTION + ":live"),
        _policy(Effect="Deny"),
    ],
)
def test_no_matching_allow_means_no_invocation(policy):
    assert not events_may_invoke(policy, FUNCTION, RULE, "123456789012")


def test_a_permission_without_source_arn_covers_every_rule():
    assert events_may_invoke(_policy(Condition={}), FUNCTION, RULE, "123456789012")
