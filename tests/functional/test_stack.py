"""StackOperator: create, update, no-op, failure, recreate, busy, interrupt and delete."""

from __future__ import annotations

import pytest

from plldb.bootstrap.stack import StackOperator
from plldb.errors import DeployError
from tests.functional.fake_cloudformation import ScriptedCloudFormation, event, no_updates_error


def _operator(cfn, events=None, notices=None, sleeps=None):
    return StackOperator(
        cfn,
        "plldb",
        on_event=(events if events is not None else []).append,
        on_notice=(notices if notices is not None else []).append,
        poll_seconds=7,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_create_reports_each_event_once_in_order_and_returns_outputs():
    cfn = ScriptedCloudFormation()
    cfn.script(
        "create",
        ("CREATE_IN_PROGRESS", [event("Table", "CREATE_IN_PROGRESS")]),
        ("CREATE_IN_PROGRESS", []),
        (
            "CREATE_IN_PROGRESS",
            [event("Table", "CREATE_COMPLETE"), event("Fn", "CREATE_IN_PROGRESS")],
        ),
        ("CREATE_COMPLETE", [event("Fn", "CREATE_COMPLETE"), event("plldb", "CREATE_COMPLETE")]),
    )
    events, sleeps = [], []
    result = _operator(cfn, events, sleeps=sleeps).deploy("https://s3/t.yaml")
    assert result.action == "created"
    assert result.outputs == {"WebSocketURL": "wss://example/live"}
    assert [(e.logical_id, e.status) for e in events] == [
        ("plldb", "CREATE_IN_PROGRESS"),
        ("Table", "CREATE_IN_PROGRESS"),
        ("Table", "CREATE_COMPLETE"),
        ("Fn", "CREATE_IN_PROGRESS"),
        ("Fn", "CREATE_COMPLETE"),
        ("plldb", "CREATE_COMPLETE"),
    ]
    assert sleeps == [7, 7, 7]


def test_no_updates_is_success_without_waiting():
    cfn = ScriptedCloudFormation("CREATE_COMPLETE")
    cfn.update_error = no_updates_error()
    sleeps = []
    result = _operator(cfn, sleeps=sleeps).deploy("https://s3/t.yaml")
    assert (result.action, result.status) == ("unchanged", "CREATE_COMPLETE")
    assert result.outputs == {"WebSocketURL": "wss://example/live"}
    assert sleeps == []


def test_failed_update_names_the_failing_resources_and_reports_only_new_events():
    cfn = ScriptedCloudFormation("UPDATE_COMPLETE", history=5)
    cfn.script(
        "update",
        (
            "UPDATE_IN_PROGRESS",
            [event("Fn", "UPDATE_FAILED", "Runtime python2.7 is not supported")],
        ),
        (
            "UPDATE_ROLLBACK_COMPLETE",
            [
                event(
                    "plldb", "UPDATE_ROLLBACK_COMPLETE", resource_type="AWS::CloudFormation::Stack"
                )
            ],
        ),
    )
    events = []
    with pytest.raises(DeployError, match="previous stack is still in place") as raised:
        _operator(cfn, events).deploy("https://s3/t.yaml")
    assert raised.value.reasons == ["Fn (UPDATE_FAILED): Runtime python2.7 is not supported"]
    assert not any(e.logical_id.startswith("Old") for e in events)


def test_a_failed_first_create_is_deleted_and_created_again():
    cfn = ScriptedCloudFormation("ROLLBACK_COMPLETE")
    cfn.script("delete", ("DELETE_COMPLETE", []))
    cfn.script("create", ("CREATE_COMPLETE", []))
    notices = []
    result = _operator(cfn, notices=notices).deploy("https://s3/t.yaml")
    assert result.action == "recreated"
    assert cfn.calls == ["delete", "create"]
    assert "deleting it and creating it again" in notices[0]


def test_a_failed_create_is_reported_with_reasons():
    cfn = ScriptedCloudFormation()
    cfn.script(
        "create",
        (
            "ROLLBACK_IN_PROGRESS",
            [event("Role", "CREATE_FAILED", "Access denied for iam:CreateRole")],
        ),
        ("ROLLBACK_COMPLETE", []),
    )
    with pytest.raises(DeployError, match="ROLLBACK_COMPLETE") as raised:
        _operator(cfn).deploy("https://s3/t.yaml")
    assert raised.value.reasons == ["Role (CREATE_FAILED): Access denied for iam:CreateRole"]


@pytest.mark.parametrize(
    "status", ["UPDATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED"]
)
def test_a_busy_or_stuck_stack_is_refused_untouched(status):
    cfn = ScriptedCloudFormation(status)
    with pytest.raises(DeployError, match=status):
        _operator(cfn).deploy("https://s3/t.yaml")
    assert cfn.calls == []


def test_ctrl_c_while_waiting_says_cloudformation_carries_on():
    cfn = ScriptedCloudFormation("UPDATE_COMPLETE")
    cfn.script("update", ("UPDATE_IN_PROGRESS", []), ("UPDATE_COMPLETE", []))

    def interrupted(seconds):
        raise KeyboardInterrupt

    operator = StackOperator(cfn, "plldb", sleep=interrupted)
    with pytest.raises(DeployError, match="Interrupted: CloudFormation carries on"):
        operator.deploy("https://s3/t.yaml")


def test_destroy_waits_for_delete_and_says_when_there_is_nothing():
    cfn = ScriptedCloudFormation("UPDATE_COMPLETE")
    cfn.script("delete", ("DELETE_IN_PROGRESS", []), ("DELETE_COMPLETE", []))
    assert _operator(cfn).destroy() is True
    assert _operator(cfn).destroy() is False
    assert _operator(ScriptedCloudFormation()).destroy() is False


def test_a_failed_delete_names_the_resource():
    cfn = ScriptedCloudFormation("CREATE_COMPLETE")
    cfn.script(
        "delete",
        (
            "DELETE_FAILED",
            [
                event(
                    "Bucket",
                    "DELETE_FAILED",
                    "The bucket you tried to delete is not empty",
                    "AWS::S3::Bucket",
                )
            ],
        ),
    )
    with pytest.raises(DeployError) as raised:
        _operator(cfn).destroy()
    assert raised.value.reasons == [
        "Bucket (DELETE_FAILED): The bucket you tried to delete is not empty"
    ]
