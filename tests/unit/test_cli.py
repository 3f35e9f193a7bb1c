"""The `plldb` command's argument handling and its one-line errors (no AWS reached)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from plldb.cli import join_spaced_tasks
from plldb.tasks import build_namespace


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bootstrap", "setup"], ["bootstrap.setup"]),
        (["bootstrap", "destroy", "--all"], ["bootstrap.destroy", "--all"]),
        (
            ["bootstrap.setup", "--region", "eu-west-1"],
            ["bootstrap.setup", "--region", "eu-west-1"],
        ),
        (["bootstrap"], ["bootstrap"]),
        (["bootstrap", "--region", "setup"], ["bootstrap", "--region", "setup"]),
        (["--help", "bootstrap", "package"], ["--help", "bootstrap.package"]),
    ],
)
def test_spaced_task_names_become_dotted(argv, expected):
    assert join_spaced_tasks(argv, build_namespace()) == expected


def test_the_collection_holds_the_bootstrap_steps_with_setup_as_default():
    namespace = build_namespace()
    bootstrap = namespace.collections["bootstrap"]
    assert set(bootstrap.task_names) == {
        "bucket", "package", "upload", "render", "deploy", "setup", "destroy",
    }  # fmt: skip
    assert bootstrap.default == "setup"
    assert build_namespace() is not build_namespace()


def _plldb(*args, env_updates=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent"})
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    env.update(env_updates or {})
    return subprocess.run(
        [sys.executable, "-m", "plldb", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_help_lists_the_tasks_and_the_version_prints():
    done = _plldb("--list")
    assert done.returncode == 0
    for name in ("bootstrap.setup", "bootstrap.destroy", "bootstrap.package"):
        assert name in done.stdout
    assert _plldb("--version").stdout.strip().startswith("plldb ")


@pytest.mark.parametrize("form", [["bootstrap"], ["bootstrap", "setup"], ["bootstrap.setup"]])
def test_every_spelling_of_setup_reaches_the_setup_task(form):
    done = _plldb(*form, "--help")
    assert done.returncode == 0
    assert "ensure the bucket, then package, upload, render and deploy" in done.stdout


def test_package_runs_without_aws(tmp_path):
    done = _plldb("bootstrap", "package", "--build-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "lambda_functions/restapi.zip" in done.stdout
    assert (tmp_path / "0.1.0" / "artifacts" / "layer" / "plldb-debugger-layer.zip").is_file()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_no_region_is_one_clear_line(tmp_path):
    done = _plldb("bootstrap", "setup", "--build-dir", str(tmp_path))
    assert done.returncode == 1
    assert _error_lines(done.stderr) == [
        "plldb: error: No AWS region configured: pass --region, set AWS_REGION or give the "
        "profile a region"
    ]


def test_no_credentials_is_one_clear_line(tmp_path):
    done = _plldb("bootstrap", "destroy", env_updates={"AWS_REGION": "eu-west-1"})
    assert done.returncode == 1
    (line,) = _error_lines(done.stderr)
    assert line.startswith("plldb: error: No usable AWS credentials")
    assert "Traceback" not in done.stderr


def test_an_unknown_profile_is_one_clear_line():
    done = _plldb("bootstrap", "bucket", "--profile", "nope", "--region", "eu-west-1")
    assert done.returncode == 1
    assert _error_lines(done.stderr) == [
        "plldb: error: AWS profile 'nope' not found: check --profile / AWS_PROFILE against "
        "~/.aws/config"
    ]


def test_verbose_adds_the_details():
    done = _plldb("bootstrap", "destroy", "--verbose", env_updates={"AWS_REGION": "eu-west-1"})
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1].startswith("plldb: error: No usable AWS credentials")
    )


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused command; fails on a traceback or several lines."""
    assert done.returncode != 0, done.stdout
    lines = _error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("plldb: error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["attach", "--stack-name", "s", "--debugpy", "--debugpy-port", "abc"], "--debugpy-port"),
        (["attach", "--debugpy-port=abc"], "--debugpy-port"),
        (["local", "up", "--moto-port", "abc"], "--moto-port"),
    ],
)
def test_a_number_flag_given_a_word_is_one_line(args, flag):
    line = _one_error_line(_plldb(*args))
    assert line == f"plldb: error: {flag} expects a whole number, not 'abc'"


def test_a_flag_without_its_value_is_plldbs_line():
    line = _one_error_line(_plldb("attach", "--stack-name"))
    assert line == "plldb: error: --stack-name needs a value"


@pytest.mark.parametrize("args", [["--pty"], ["no-such-command"], ["attach", "-b"]])
def test_unknown_flags_and_commands_are_one_line(args):
    line = _one_error_line(_plldb(*args))
    assert line.startswith(f"plldb: error: unknown command or option '{args[-1]}'")


def test_a_misspelt_region_is_refused_before_any_call(tmp_path):
    done = _plldb(
        "bootstrap", "setup", "--region", "eu-wset-1", "--build-dir", str(tmp_path),
        env_updates={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    )  # fmt: skip
    line = _one_error_line(done)
    assert line.startswith(
        "plldb: error: 'eu-wset-1' is not an AWS region: did you mean eu-west-1?"
    )
    assert not any(tmp_path.iterdir())  # refused before packaging


def test_any_region_name_is_allowed_with_a_custom_endpoint():
    # Nothing listens on port 9: the call fails, but only after the region was accepted.
    done = _plldb(
        "bootstrap", "destroy", "--region", "moon-base-1",
        env_updates={
            "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1",
        },
    )  # fmt: skip
    line = _one_error_line(done)
    assert "not an AWS region" not in line
    assert line.startswith("plldb: error: Cannot reach AWS while reading the caller identity")


@pytest.mark.parametrize(
    "flags",
    [["--debugpy-port", "5679"], ["--debugpy-host", "192.168.1.5"], ["--wait-for-client"]],
)
def test_debugpy_flags_without_debugpy_are_refused(flags):
    line = _one_error_line(_plldb("attach", "--stack-name", "s", *flags))
    assert line == f"plldb: error: {flags[0]} needs --debugpy: add --debugpy"


def test_help_shows_plldbs_commands_and_only_the_flags_it_honours():
    done = _plldb("--help")
    assert done.returncode == 0
    out = done.stdout
    assert out.index("attach") < out.index("--help")  # commands first
    for flag in ("--help", "--version", "--list"):
        assert flag in out
    foreign = ["--pty", "--dry", "--hide", "--write-pyc", "--prompt-for-sudo-password", "--echo"]
    foreign += ["--warn-only", "--command-timeout", "--config", "--debug", "--complete"]
    for flag in foreign:
        assert flag not in out
    assert "core-opts" not in out


def test_attach_has_only_deliberate_short_flags():
    from plldb.tasks import attach

    shorts = {
        name for argument in attach.get_arguments() for name in argument.names if len(name) == 1
    }
    assert shorts == {"s", "f", "p", "r", "v"}
    out = _plldb("attach", "--help").stdout
    assert "-s STRING, --stack-name=STRING" in out
    assert "-b" not in out.split() and "-e" not in out.split()


def test_a_seconds_flag_given_a_word_is_one_line():
    line = _one_error_line(_plldb("local", "up", "--iam-propagation-seconds", "soon"))
    assert line == "plldb: error: --iam-propagation-seconds expects a number, not 'soon'"


def test_local_up_enforces_iam_unless_told_not_to():
    (local_up,) = build_namespace().collections["local"].tasks.values()
    flags = {argument.names[0]: argument for argument in local_up.get_arguments()}
    assert flags["enforce-iam"].default is True  # invoke offers --no-enforce-iam for it
    assert flags["iam-propagation-seconds"].default == 0.0
    assert "policy" in build_namespace().task_names


def test_short_flags_reach_the_task():
    line = _one_error_line(_plldb("attach", "-s", "stack", "-r", "eu-wset-1"))
    assert "'eu-wset-1' is not an AWS region" in line


def test_redact_without_record_is_refused():
    line = _one_error_line(_plldb("attach", "--stack-name", "s", "--redact", "$.body"))
    assert line == "plldb: error: --redact needs --record DIR"


@pytest.mark.parametrize("rule", ["body.card", "re:(unclosed"])
def test_a_bad_redact_rule_is_refused_before_any_call(tmp_path, rule):
    done = _plldb("attach", "--stack-name", "s", "--record", str(tmp_path / "r"), "--redact", rule)
    assert done.returncode == 1
    line = _one_error_line(done)
    assert line.startswith(f"plldb: error: --redact {rule!r}: ")
