"""The plumbing that picks the journey's target and guards the real account (no AWS here)."""

from __future__ import annotations

import pytest

from .targets import (
    OPT_IN_VALUE,
    AwsTarget,
    JourneyConfigError,
    OfflineTarget,
    select_target,
)

AWS = {"PLLDB_JOURNEY_TARGET": "aws", "PLLDB_JOURNEY_REGION": "eu-central-1"}
OPTED_IN = {**AWS, "PLLDB_JOURNEY_AWS_OPT_IN": OPT_IN_VALUE}


def test_offline_is_the_default():
    assert isinstance(select_target({}), OfflineTarget)
    assert isinstance(select_target({"PLLDB_JOURNEY_TARGET": ""}), OfflineTarget)


@pytest.mark.parametrize("opt_in", [None, "yes", "YES-THIS-COSTS-MONEY"])
def test_aws_is_refused_without_the_exact_opt_in(opt_in):
    environ = dict(AWS) if opt_in is None else {**AWS, "PLLDB_JOURNEY_AWS_OPT_IN": opt_in}
    with pytest.raises(JourneyConfigError, match=f"PLLDB_JOURNEY_AWS_OPT_IN={OPT_IN_VALUE}"):
        select_target(environ)


def test_aws_needs_a_region_and_no_endpoint_override():
    with pytest.raises(JourneyConfigError, match="PLLDB_JOURNEY_REGION"):
        select_target({**OPTED_IN, "PLLDB_JOURNEY_REGION": ""})
    with pytest.raises(JourneyConfigError, match="AWS_ENDPOINT_URL_LAMBDA is set"):
        select_target({**OPTED_IN, "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:1"})


def test_an_unknown_target_is_an_error():
    with pytest.raises(JourneyConfigError, match="expected 'offline' or 'aws'"):
        select_target({"PLLDB_JOURNEY_TARGET": "staging"})


def test_aws_subprocesses_get_the_profile_and_region_and_no_endpoints():
    base = {
        **OPTED_IN,
        "PLLDB_JOURNEY_PROFILE": "journey",
        "PATH": "/usr/bin",
        "AWS_PROFILE": "someone-else",
        "AWS_ACCESS_KEY_ID": "AKIA...",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "PLLDB_BUILD_DIR": "/elsewhere",
    }
    target = select_target(base)
    assert isinstance(target, AwsTarget) and not target.keep_helper
    assert target.environment() == {
        "PATH": "/usr/bin",
        "AWS_PROFILE": "journey",
        "AWS_REGION": "eu-central-1",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }


def test_without_a_profile_the_environments_credentials_are_used_as_in_ci():
    base = {**OPTED_IN, "AWS_ACCESS_KEY_ID": "ASIA...", "AWS_SESSION_TOKEN": "token"}
    env = select_target(base).environment()
    assert env["AWS_ACCESS_KEY_ID"] == "ASIA..." and env["AWS_SESSION_TOKEN"] == "token"
    assert "AWS_PROFILE" not in env and env["AWS_REGION"] == "eu-central-1"


def test_keep_helper_is_read():
    assert select_target({**OPTED_IN, "PLLDB_JOURNEY_KEEP_HELPER": "1"}).keep_helper


def test_aws_waits_longer_for_the_restore_than_offline():
    assert AwsTarget("eu-west-1", None, {}).restore_timeout > OfflineTarget({}).restore_timeout
