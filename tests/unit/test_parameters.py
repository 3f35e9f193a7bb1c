"""`plldb bootstrap setup --parameter Key=Value`, checked against the template before AWS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from plldb.bootstrap.parameters import parse_parameters
from plldb.bootstrap.render import load_template
from plldb.errors import UsageError
from plldb.resources import cloudformation_dir


@pytest.fixture(scope="module")
def declared():
    text = (cloudformation_dir() / "template.yaml").read_text()
    return load_template(text)["Parameters"]


def test_the_lease_and_the_sweep_schedule_are_parameters_with_their_defaults(declared):
    assert declared["SessionLeaseSeconds"]["Default"] == 60
    assert declared["SweepSchedule"]["Default"] == "rate(1 minute)"
    given = ["SessionLeaseSeconds=5", "SweepSchedule=rate(5 minutes)"]
    assert parse_parameters(given, declared) == {
        "SessionLeaseSeconds": "5",
        "SweepSchedule": "rate(5 minutes)",
    }


@pytest.mark.parametrize(
    "text",
    [
        "SessionLeaseSeconds",
        "=5",
        "Lease=5",
        "ArtifactBucket=mine",
        "SessionLeaseSeconds=soon",
        "SessionLeaseSeconds=1",
        "SweepSchedule=every minute",
        "LogRetentionInDays=2",
    ],
)
def test_bad_parameters_are_refused(declared, text):
    with pytest.raises(UsageError):
        parse_parameters([text], declared)


def test_a_bad_parameter_is_one_line_and_a_non_zero_exit_before_any_aws_call(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no region, no credentials
    done = subprocess.run(
        [sys.executable, "-m", "plldb", "bootstrap", "setup", "--parameter", "Lease=5"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("plldb: error: --parameter Lease:")
    assert done.stderr.count("\n") == 1
