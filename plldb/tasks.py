"""The invoke collection behind both `inv` and the `plldb` command: one library call per task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke import Collection, Context

from plldb.bootstrap import names
from plldb.console import INTERRUPTED_EXIT_CODE, TqdmReporter, user_errors
from plldb.flags import plldb_task

# boto3 is imported inside the library calls, not here, so `plldb --help` stays fast.

_AWS_HELP = {
    "profile": "AWS profile to use (default: AWS_PROFILE or the default profile)",
    "region": "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's region)",
    "verbose": "show details and tracebacks",
}
_BUILD_HELP = {"build-dir": "where steps leave their output (default: .plldb/build)"}
_PARAMETER_HELP = {
    "parameter": "Key=Value for a parameter of the helper stack, repeatable (for example "
    "SessionLeaseSeconds=60, SweepSchedule='rate(1 minute)'); others keep their values"
}
# The only short flags: invoke's automatic ones (-a, -b, -e, ...) change as options are added.
_AWS_SHORT = {"profile": "p", "region": "r", "verbose": "v"}


def _build(build_dir: str | None):
    from plldb.bootstrap.build import BuildDir

    return BuildDir(names.build_dir(root=Path(build_dir) if build_dir else None))


def _target(profile: str | None, region: str | None):
    from plldb.aws import resolve_target

    return resolve_target(profile, region)


def _aws_step(
    name: str,
    profile: str | None,
    region: str | None,
    build_dir: str | None,
    verbose: bool,
    **options: Any,
) -> Any:
    """Run one of the steps that take (target, build directory, reporter)."""
    from plldb.bootstrap import steps

    with user_errors(verbose):
        if "parameters" in options:  # a typo ends the command before any AWS call
            steps.check_parameters(options["parameters"])
        return getattr(steps, name)(
            _target(profile, region), _build(build_dir), TqdmReporter(), **options
        )


@plldb_task(short=_AWS_SHORT, help={**_AWS_HELP})
def bucket(
    c: Context, profile: str | None = None, region: str | None = None, verbose: bool = False
):
    """Create the private bucket plldb-core-infrastructure-<region>-<account> if missing."""
    from plldb.bootstrap import steps

    with user_errors(verbose):
        name, _ = steps.ensure_bucket(_target(profile, region), TqdmReporter())
    print(name)


@plldb_task(short={"verbose": "v"}, help={**_BUILD_HELP, "verbose": _AWS_HELP["verbose"]})
def package(c: Context, build_dir: str | None = None, verbose: bool = False):
    """Zip each Lambda function and the debugger layer into the build directory (no AWS calls)."""
    from plldb.bootstrap import steps

    with user_errors(verbose):
        record = steps.package(_build(build_dir), TqdmReporter())
    for artifact in record.artifacts:
        print(f"{artifact.name}\t{artifact.size}\t{artifact.sha256}")


@plldb_task(short=_AWS_SHORT, help={**_AWS_HELP, **_BUILD_HELP})
def upload(
    c: Context,
    profile: str | None = None,
    region: str | None = None,
    build_dir: str | None = None,
    verbose: bool = False,
):
    """Upload the packaged zips under plldb/versions/<version>/; unchanged ones are skipped."""
    record = _aws_step("upload", profile, region, build_dir, verbose)
    for artifact in record.artifacts:
        state = "uploaded" if artifact.uploaded else "unchanged"
        print(f"s3://{record.bucket}/{artifact.key}\t{state}\t{artifact.version_id or '-'}")


@plldb_task(short=_AWS_SHORT, help={**_AWS_HELP, **_BUILD_HELP})
def render(
    c: Context,
    profile: str | None = None,
    region: str | None = None,
    build_dir: str | None = None,
    verbose: bool = False,
):
    """Point template.yaml at the uploaded artifacts and upload it next to them."""
    record = _aws_step("render", profile, region, build_dir, verbose)
    print(record.template_url)


@plldb_task(
    short=_AWS_SHORT, help={**_AWS_HELP, **_BUILD_HELP, **_PARAMETER_HELP}, iterable=["parameter"]
)
def deploy(
    c: Context,
    profile: str | None = None,
    region: str | None = None,
    build_dir: str | None = None,
    parameter: list[str] | None = None,
    verbose: bool = False,
):
    """Create or update stack `plldb` from the rendered template, showing its events."""
    result = _aws_step("deploy", profile, region, build_dir, verbose, parameters=parameter or [])
    _print_outputs(result.outputs)


@plldb_task(
    default=True,
    short=_AWS_SHORT,
    help={**_AWS_HELP, **_BUILD_HELP, **_PARAMETER_HELP},
    iterable=["parameter"],
)
def setup(
    c: Context,
    profile: str | None = None,
    region: str | None = None,
    build_dir: str | None = None,
    parameter: list[str] | None = None,
    verbose: bool = False,
):
    """Bootstrap plldb: ensure the bucket, then package, upload, render and deploy stack `plldb`."""
    result = _aws_step("setup", profile, region, build_dir, verbose, parameters=parameter or [])
    _print_outputs(result.deploy.outputs)


@plldb_task(
    short=_AWS_SHORT,
    help={**_AWS_HELP, "all": "also empty (every object version) and delete the bucket"},
)
def destroy(
    c: Context,
    profile: str | None = None,
    region: str | None = None,
    all: bool = False,
    verbose: bool = False,
):
    """Delete stack `plldb`; the bucket and its artifacts stay unless --all."""
    from plldb.bootstrap import steps

    with user_errors(verbose):
        steps.destroy(_target(profile, region), TqdmReporter(), everything=all)


def _print_outputs(outputs: dict[str, str]) -> None:
    for key in sorted(outputs):
        print(f"{key}\t{outputs[key]}")


@plldb_task(
    name="up",
    short={"region": "r", "verbose": "v"},
    help={
        "region": "region the offline cloud plays (default: eu-west-1)",
        "moto-port": "fixed port for moto's server (default: a free one)",
        "schedule-scale": "scheduled seconds per real second: 60 runs rate(1 minute) rules "
        "every second (default: 1, real time)",
        "enforce-iam": "check every call's signature and IAM policies, as AWS does (default; "
        "--no-enforce-iam accepts any key and allows everything)",
        "iam-propagation-seconds": "a policy attached or put takes effect this many seconds "
        "later, as IAM's eventual consistency can (default: 0)",
        "verbose": _AWS_HELP["verbose"],
        "max-connection-seconds": "WebSocket connections end at this age, as in API Gateway "
        "(default: 7200)",
        "idle-timeout-seconds": "WebSocket connections end after this long without a client "
        "message, as in API Gateway (default: 600)",
        "lossy-disconnect": "close WebSocket connections without delivering $disconnect "
        "(API Gateway only promises its best effort)",
    },
)
def local_up(
    c: Context,
    region: str = "eu-west-1",
    moto_port: int = 0,
    enforce_iam: bool = True,
    iam_propagation_seconds: float = 0.0,
    verbose: bool = False,
    max_connection_seconds: float = 7200.0,
    idle_timeout_seconds: float = 600.0,
    lossy_disconnect: bool = False,
    schedule_scale: float = 1.0,
):
    """Run the offline cloud on 127.0.0.1 and print the environment to use; Ctrl-C stops it."""
    from plldb.local.foreground import run_until_stopped

    def emit(line: str) -> None:
        print(line, flush=True)

    with user_errors(verbose):
        run_until_stopped(
            emit,
            TqdmReporter().notice,
            region=region,
            moto_port=moto_port,
            max_connection_seconds=max_connection_seconds,
            idle_timeout_seconds=idle_timeout_seconds,
            lossy_disconnect=lossy_disconnect,
            schedule_scale=schedule_scale,
            enforce_iam=enforce_iam,
            iam_propagation_seconds=iam_propagation_seconds,
        )


@plldb_task(
    short=_AWS_SHORT,
    help={
        **_AWS_HELP,
        "bootstrap": "the policy `plldb bootstrap setup/destroy` needs, instead of attach's",
    },
)
def policy(
    c: Context,
    bootstrap: bool = False,
    profile: str | None = None,
    region: str | None = None,
    verbose: bool = False,
):
    """Print the IAM policy (JSON) that `plldb attach` needs here (docs/permissions.md)."""
    import json

    from plldb.permissions import policy_for

    with user_errors(verbose):
        print(json.dumps(policy_for(_target(profile, region), bootstrap=bootstrap), indent=2))


@plldb_task(
    # No positional arguments: a positional stack_name would swallow `--help` as its value.
    positional=[],
    iterable=["function", "redact"],
    short={"stack-name": "s", "function": "f", **_AWS_SHORT},
    kinds={"debugpy-port": int},
    help={
        "stack-name": "the deployed stack whose Lambda functions to debug (required)",
        "function": "only functions whose name or logical id matches this glob (repeatable)",
        "force": "take over from a debugger already attached to the stack",
        "function-role": "run handlers with the deployed function role's credentials (sent "
        "to this machine with each invocation) instead of your own; see docs/security.md",
        "debugpy": "start a debugpy server in this process for your IDE to attach to",
        "debugpy-host": "where debugpy listens (default: 127.0.0.1)",
        "debugpy-port": "debugpy's port (default: 5678)",
        "wait-for-client": "with --debugpy: hold invocations until the IDE has attached",
        "write-vscode": "with --debugpy: add the attach configuration to .vscode/launch.json",
        "template": "the stack's template (SAM or CloudFormation) that locates each function's "
        "local source (default: template.yaml, template.yml or template.json here)",
        "record": "write each invocation run here to DIR as one JSON file, redacted "
        "(docs/debugging.md); `plldb replay` runs them again",
        "redact": "with --record: also redact this JSON path of event and answer ($.body.card) "
        "or every match of re:REGEX (repeatable)",
        "management-api-url": "management REST API base URL (default: PLLDB_MANAGEMENT_API_URL, "
        "else output ManagementAPIURL of stack plldb)",
        "websocket-url": "WebSocket API URL (default: PLLDB_WEBSOCKET_URL, else output "
        "WebSocketURL of stack plldb)",
        **_AWS_HELP,
    },
)
def attach(
    c: Context,
    stack_name: str | None = None,
    force: bool = False,
    function: list[str] | None = None,
    template: str | None = None,
    function_role: bool = False,
    management_api_url: str | None = None,
    websocket_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    verbose: bool = False,
    debugpy: bool = False,
    # None: not given, so it can be refused without --debugpy; debugger.py has the defaults.
    debugpy_host: str | None = None,
    debugpy_port: int | None = None,
    wait_for_client: bool = False,
    write_vscode: bool = False,
    record: str | None = None,
    redact: list[str] | None = None,
):
    """Debug a deployed stack: its invocations run here, from local source, until Ctrl-C.

    Each function's handler is found through the stack's template (--template, or the
    template in the current directory) and runs with the function's variables and your own
    AWS credentials; its answer goes back to the caller in AWS. With --debugpy, your IDE
    attaches to this process and breakpoints in your handlers stop relayed invocations.

    The API addresses come from stack `plldb` (run `plldb bootstrap setup` first) unless
    overridden, e.g. for custom domains, by --management-api-url / --websocket-url or the
    environment variables PLLDB_MANAGEMENT_API_URL / PLLDB_WEBSOCKET_URL (flags win).
    Messages go to stdout, connection news to stderr.
    """
    from invoke.exceptions import Exit

    from plldb.attach.debugger import debugpy_settings
    from plldb.attach.runner import attach as run_attach
    from plldb.console import attach_printer

    if not stack_name:
        raise Exit("plldb: error: --stack-name is required: the deployed stack to debug", code=1)
    if redact and not record:
        raise Exit("plldb: error: --redact needs --record DIR", code=1)
    with user_errors(verbose):
        debug = debugpy_settings(debugpy, debugpy_host, debugpy_port, wait_for_client, write_vscode)
        recorder = _recorder(record, redact or [])
        detached = run_attach(
            _target(profile, region),
            stack_name,
            attach_printer(),
            force=force,
            functions=function or [],
            template=template,
            function_role=function_role,
            debugpy=debug,
            write_vscode=write_vscode,
            management_api_url=management_api_url,
            websocket_url=websocket_url,
            recorder=recorder,
        )
    if detached.signal is not None:
        # Stopped by Ctrl-C or SIGTERM, like an interrupted command: 128 + SIGINT's number.
        raise Exit(code=INTERRUPTED_EXIT_CODE)


@plldb_task(
    positional=["path"],
    iterable=["function"],
    short={"function": "f", "verbose": "v"},
    kinds={"debugpy-port": int},
    help={
        "path": "a recording (JSON file) or a directory of them, from `plldb attach --record`",
        "function": "only recordings of functions whose name or logical id matches this glob "
        "(repeatable)",
        "no-compare": "run the handlers and print their answers, without comparing",
        "template": "the template that locates each function's local source (default: "
        "template.yaml, template.yml or template.json here)",
        "debugpy": "start a debugpy server in this process for your IDE to attach to",
        "debugpy-host": "where debugpy listens (default: 127.0.0.1)",
        "debugpy-port": "debugpy's port (default: 5678)",
        "wait-for-client": "with --debugpy: hold the replay until the IDE has attached",
        "verbose": _AWS_HELP["verbose"],
    },
)
def replay(
    c: Context,
    path: str,
    function: list[str] | None = None,
    no_compare: bool = False,
    template: str | None = None,
    debugpy: bool = False,
    debugpy_host: str | None = None,
    debugpy_port: int | None = None,
    wait_for_client: bool = False,
    verbose: bool = False,
):
    """Run recorded invocations again against the local handlers and compare the answers.

    Each recording's function is found by its logical id in the template, and runs with the
    recorded event and a context whose remaining time counts down from the recorded one. A
    different answer prints a unified diff and exits 1; bad input exits 2.
    """
    from invoke.exceptions import Exit

    from plldb.attach.debugger import debugpy_settings
    from plldb.console import attach_printer
    from plldb.errors import PlldbError
    from plldb.recording.compare import describe
    from plldb.recording.replay import replay_command

    different = 0
    with user_errors(verbose):
        try:
            debug = debugpy_settings(debugpy, debugpy_host, debugpy_port, wait_for_client)
            replays = replay_command(
                Path(path), attach_printer(), functions=function or [], template=template,
                debugpy=debug,
            )  # fmt: skip
            for replayed in replays:
                print(describe(replayed, compare=not no_compare), end="", flush=True)
                different += 0 if no_compare or replayed.same else 1
        except PlldbError as error:
            # 2, not 1: a script tells bad input from a replay that found a difference.
            raise Exit(f"plldb: error: {error}", code=2) from None
    if different:
        raise Exit(f"plldb: {different} replay(s) answered differently", code=1)


def _recorder(directory: str | None, rules: list[str]) -> Any:
    if not directory:
        return None
    from plldb.recording.recorder import DirectoryRecorder
    from plldb.recording.redact import redactions

    return DirectoryRecorder(Path(directory), redactions(rules))


@plldb_task(
    name="detach",
    short={"stack-name": "s", **_AWS_SHORT},
    help={
        "stack-name": "the target stack whose functions to restore",
        "session": "only this session (its id; default: every session of the stack)",
        "management-api-url": "management REST API base URL (default: PLLDB_MANAGEMENT_API_URL, "
        "else output ManagementAPIURL of stack plldb)",
        **_AWS_HELP,
    },
)
def detach(
    c: Context,
    stack_name: str | None = None,
    session: str | None = None,
    management_api_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    verbose: bool = False,
):
    """End a stack's debug sessions and restore its functions, with no attach running.

    Safe to repeat, and while the sweeper or another detach runs: a restored function is not
    changed again. The restore itself runs in the backend; `plldb attach` is not needed.
    """
    from invoke.exceptions import Exit

    from plldb.attach.manage import detach as run_detach

    if not stack_name:
        raise Exit("plldb: error: --stack-name is required: the stack to restore", code=1)
    with user_errors(verbose):
        result = run_detach(_target(profile, region), stack_name, session, management_api_url)
    print(
        f"stack {result.stack_name}: {len(result.closed)} session(s) closed, "
        f"restore started for {len(result.restoring)}"
    )


@plldb_task(
    name="status",
    short={"stack-name": "s", **_AWS_SHORT},
    help={
        "stack-name": "only this target stack (default: every stack)",
        "management-api-url": "management REST API base URL (default: PLLDB_MANAGEMENT_API_URL, "
        "else output ManagementAPIURL of stack plldb)",
        **_AWS_HELP,
    },
)
def status(
    c: Context,
    stack_name: str | None = None,
    management_api_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    verbose: bool = False,
):
    """Show debug sessions (who, since, lease left, state), what they instrumented, and the
    roles holding the relay policy."""
    from plldb.attach.manage import status as read_status
    from plldb.console import print_status

    with user_errors(verbose):
        print_status(read_status(_target(profile, region), stack_name, management_api_url))


def build_namespace() -> Collection:
    """A fresh collection, so callers (the repo's tasks.py) can add tasks without side effects."""
    bootstrap = Collection("bootstrap", bucket, package, upload, render, deploy, setup, destroy)
    local = Collection("local", local_up)
    return Collection(bootstrap, local, attach, detach, status, replay, policy)


namespace = build_namespace()
