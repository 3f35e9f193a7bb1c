"""The GitHub workflows: valid against GitHub's schema (checked offline) and running our tasks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def _check(*paths: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("check-jsonschema")
    assert executable, "check-jsonschema comes with the dev extra"
    return subprocess.run(
        [executable, "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
    )


def _load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as true
    return workflow


def test_workflows_match_githubs_schema():
    done = _check(*sorted(WORKFLOWS.glob("*.yml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_does_reject_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: 3\n")
    assert _check(broken).returncode != 0


def _readme_test_command() -> str:
    readme = (WORKFLOWS.parents[1] / "README.md").read_text()
    block = readme.split("Run the tests", 1)[1].split("```", 2)[1]
    (command,) = [line for line in block.splitlines() if line.strip()]
    return command.strip()


def test_ci_runs_lint_and_the_readme_test_command_on_push_and_pull_request():
    workflow = _load("ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    commands = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "inv lint" in commands
    assert _readme_test_command() in commands
    assert "3.14" in workflow["jobs"]["test"]["strategy"]["matrix"]["python"]


def test_the_ci_entry_point_runs_the_readme_test_command():
    script = (WORKFLOWS.parents[1] / ".ci" / "run").read_text().splitlines()
    assert script[-1] == _readme_test_command()


def test_deploy_is_manual_uses_oidc_and_runs_the_steps_in_order():
    workflow = _load("deploy.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    assert workflow["permissions"]["id-token"] == "write"
    steps = workflow["jobs"]["deploy"]["steps"]
    (credentials,) = [s for s in steps if "configure-aws-credentials" in s.get("uses", "")]
    # A role ARN is not a secret: a repository variable (docs/ci-deploy.md).
    assert credentials["with"]["role-to-assume"] == "${{ vars.PLLDB_DEPLOY_ROLE_ARN }}"
    commands = [step["run"] for step in steps if step.get("run", "").startswith("inv ")]
    assert commands == [
        "inv bootstrap.bucket",
        "inv bootstrap.package",
        "inv bootstrap.upload",
        "inv bootstrap.render",
        "inv bootstrap.deploy",
    ]
    assert all("name" in step for step in steps if "run" in step)


def test_aws_journey_runs_on_dispatch_and_nightly_with_oidc():
    workflow = _load("aws-journey.yml")
    assert set(workflow["on"]) == {"workflow_dispatch", "schedule"}
    assert "region" in workflow["on"]["workflow_dispatch"]["inputs"]
    assert workflow["on"]["schedule"][0]["cron"]
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is False  # a run must finish cleanup
    steps = workflow["jobs"]["journey"]["steps"]
    (credentials,) = [s for s in steps if "configure-aws-credentials" in s.get("uses", "")]
    assert credentials["uses"].endswith("@v4")
    assert credentials["with"]["role-to-assume"] == "${{ vars.PLLDB_JOURNEY_ROLE_ARN }}"
    runs = [step.get("run", "") for step in steps]
    assert 'python -m pip install -e ".[dev]"' in runs
    (journey,) = [r for r in runs if r.startswith("inv ")]
    assert journey.startswith("inv test.aws --region ") and journey.endswith(" --yes")
    # Credentials come before the journey; installing needs none.
    assert steps.index(credentials) < runs.index(journey)


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml", "aws-journey.yml"])
def test_no_long_lived_aws_keys_in_workflows(name):
    text = (WORKFLOWS / name).read_text()
    assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-secret-access-key" not in text
