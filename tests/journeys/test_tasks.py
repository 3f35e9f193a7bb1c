"""`inv test.aws` and `inv test.journey`: what they run, with which variables, and the guard."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from unittest import mock

import pytest
from invoke.exceptions import Exit

from .targets import OPT_IN_VALUE, select_target

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "python -m pytest tests/journeys -p no:cacheprovider -q"


@pytest.fixture(scope="module")
def tasks():
    spec = importlib.util.spec_from_file_location("plldb_root_tasks", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aws_prints_the_estimate_then_runs_the_journey_opted_in(tasks, capsys):
    c = mock.Mock()
    tasks.test_aws.body(c, region="eu-north-1", profile="dev", yes=True)
    printed = capsys.readouterr().out
    assert "well under $0.01 per run" in printed and "eu-north-1" in printed
    assert "profile dev" in printed and "what is left" in printed
    (call,) = c.run.call_args_list
    assert call.args == (COMMAND,)
    env = call.kwargs["env"]
    assert env["PLLDB_JOURNEY_AWS_OPT_IN"] == OPT_IN_VALUE
    target = select_target(env)  # the variables the task sets are the ones the suite reads
    assert (target.name, target.region, target.profile) == ("aws", "eu-north-1", "dev")
    assert not target.keep_helper


def test_aws_keep_keeps_the_helper_stack(tasks):
    c = mock.Mock()
    tasks.test_aws.body(c, region="eu-west-1", yes=True, keep=True)
    assert select_target(c.run.call_args.kwargs["env"]).keep_helper


def test_aws_without_yes_asks_and_refuses_when_it_cannot(tasks, monkeypatch):
    c = mock.Mock()
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    with pytest.raises(Exit, match="pass --yes"):
        tasks.test_aws.body(c, region="eu-west-1")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(Exit, match="nothing done"):
        tasks.test_aws.body(c, region="eu-west-1")
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    tasks.test_aws.body(c, region="eu-west-1")
    assert c.run.call_count == 1


def test_aws_needs_a_region(tasks, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(Exit, match="--region"):
        tasks.test_aws.body(mock.Mock(), yes=True)


def test_journey_runs_offline_and_test_alone_still_runs_everything(tasks):
    c = mock.Mock()
    tasks.test_journey.body(c)
    assert c.run.call_args.args == (COMMAND,)
    assert select_target(c.run.call_args.kwargs["env"]).name == "offline"
    assert tasks.ns.collections["test"].default == "all"
