"""invoke entry point: the plldb collection plus tasks that only make sense in a checkout."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from invoke import Collection, Context, task

from plldb.tasks import build_namespace

_EXAMPLE_DEPLOY = Path(__file__).resolve().parent / "examples" / "qr-upload" / "deploy.py"
_EXAMPLE_HELP = {
    "stack-name": "the example's stack (default: qr-upload-dev)",
    "profile": "AWS profile to use (default: AWS_PROFILE or the default profile)",
    "region": "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's region)",
}


@task(default=True)
def test_all(c: Context):
    """Run the test suite."""
    c.run("python -m pytest", pty=False)


JOURNEY_COMMAND = "python -m pytest tests/journeys -p no:cacheprovider -q"
# tests/journeys/targets.py reads these.
JOURNEY_OPT_IN = ("PLLDB_JOURNEY_AWS_OPT_IN", "yes-this-costs-money")


@task
def test_journey(c: Context):
    """The journey suite (bootstrap, example, attach, takeover, kill, restore) offline."""
    c.run(JOURNEY_COMMAND, env={"PLLDB_JOURNEY_TARGET": "offline"}, pty=False)


def aws_journey_estimate(region: str, profile: str | None, keep: bool) -> str:
    """What one `inv test.aws` run creates and costs (list prices, before the free tier)."""
    helper = "kept afterwards (--keep)" if keep else "removed afterwards if this run created it"
    who = f"profile {profile}" if profile else "the credentials in the environment"
    return f"""\
The AWS journey runs in region {region} with {who}. It creates:
  - CloudFormation: stack plldb (only if missing; {helper}) and plldbj-<8 hex>-qr-upload
  - Lambda: 8 functions (6 of plldb, 2 of the example), invoked a few dozen times, seconds each
  - DynamoDB on demand: PLLDBSessions, PLLDBDebugger and the example's table, a few dozen requests
  - API Gateway: a few WebSocket connections and messages, a few REST requests
  - S3: the plldb bucket and plldbj-<8 hex>-qr-deployments-..., objects under 1 MB in all
  - IAM roles and policies (free), CloudWatch log groups with a few kB of logs
Estimated cost: well under $0.01 per run, before the free tier.
The example stack and its buckets are always removed, whichever step fails. If removal fails,
the run fails and names what is left (everything of the run is named plldbj-<8 hex>-...);
idle leftovers cost next to nothing (S3 storage under 1 MB), but delete them.
"""


@task(
    help={
        "region": "AWS region (default: AWS_REGION or AWS_DEFAULT_REGION)",
        "profile": "AWS profile (default: the credentials in the environment, as in CI)",
        "yes": "go ahead without asking (CI); otherwise you are asked to type yes",
        "keep": "keep the helper stack plldb if this run created it (faster next runs)",
    }
)
def test_aws(
    c: Context,
    region: str | None = None,
    profile: str | None = None,
    yes: bool = False,
    keep: bool = False,
):
    """The journey suite against a real AWS account: costs money (under $0.01), opt-in."""
    import os

    from invoke.exceptions import Exit

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise Exit("inv test.aws: error: give --region (or set AWS_REGION)", code=1)
    print(aws_journey_estimate(region, profile, keep))
    if not yes:
        if not sys.stdin.isatty():
            raise Exit("inv test.aws: error: not a terminal: pass --yes to go ahead", code=1)
        if input("Type yes to run it: ").strip() != "yes":
            raise Exit("inv test.aws: nothing done", code=1)
    env = {
        "PLLDB_JOURNEY_TARGET": "aws",
        "PLLDB_JOURNEY_REGION": region,
        "PLLDB_JOURNEY_PROFILE": profile or "",
        "PLLDB_JOURNEY_KEEP_HELPER": "1" if keep else "",
        JOURNEY_OPT_IN[0]: JOURNEY_OPT_IN[1],
    }
    c.run(JOURNEY_COMMAND, env=env, pty=False)


@task
def lint(c: Context):
    """ruff (lint and format check) and cfn-lint on the template."""
    c.run("ruff check .")
    c.run("ruff format --check .")
    c.run("cfn-lint cloudformation/template.yaml")


@task
def demo(c: Context):
    """The whole journey offline: bootstrap, deploy the example, attach, invoke, detach."""
    from invoke.exceptions import Exit

    from plldb.local.demo import DemoError, run_demo

    def deploy(session, stack_name: str) -> dict[str, str]:
        return _example_module().deploy(session, stack_name=stack_name)

    try:
        report = run_demo(_EXAMPLE_DEPLOY.parent, deploy)
    except DemoError as error:
        raise Exit(f"plldb demo: error: {error}", code=1) from None
    total = sum(seconds for _, seconds in report.phases)
    print(f"Done in {total:.1f} s: the same commands work against AWS once credentials are set.")
    # Everything is stopped; the process ends here. Without this, the collector walks moto's
    # hundreds of thousands of objects once more at exit, which took 0.6 to 1 s.
    import gc

    gc.freeze()


@task
def bench(c: Context):
    """Print the figures: bootstrap, the offline cloud, attach, instrumentation, the relay."""
    c.run("python bench/bench_bootstrap.py")
    c.run("python bench/bench_offline_cloud.py")
    c.run("python bench/bench_attach.py")
    c.run("python bench/bench_instrumentation.py")
    c.run("python bench/bench_relay.py")
    c.run("python bench/bench_demo.py")


def _example_module() -> ModuleType:
    """examples/qr-upload/deploy.py, loaded by path: `qr-upload` is not an importable name."""
    name = "qr_upload_deploy"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _EXAMPLE_DEPLOY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _example_call(function: str, profile: str | None, region: str | None, **options):
    import logging

    from plldb.aws import make_session
    from plldb.console import user_errors

    with user_errors(False):
        logging.getLogger("qr_upload_deploy").setLevel(logging.INFO)
        return getattr(_example_module(), function)(make_session(profile, region), **options)


@task(help={**_EXAMPLE_HELP, "environment": "dev or prod (default: dev)"})
def example_deploy(
    c: Context,
    stack_name: str = "qr-upload-dev",
    environment: str = "dev",
    profile: str | None = None,
    region: str | None = None,
):
    """Deploy the QR upload example stack (examples/qr-upload) and print its outputs."""
    outputs = _example_call(
        "deploy", profile, region, stack_name=stack_name, environment=environment
    )
    for key, value in sorted(outputs.items()):
        print(f"{key}\t{value}")


@task(help=_EXAMPLE_HELP)
def example_destroy(
    c: Context,
    stack_name: str = "qr-upload-dev",
    profile: str | None = None,
    region: str | None = None,
):
    """Empty the example stack's buckets and delete it; the deployment bucket stays."""
    deleted = _example_call("destroy", profile, region, stack_name=stack_name)
    print(f"{stack_name}\t{'deleted' if deleted else 'not found'}")


ns = build_namespace()
for _task in (lint, demo, bench):
    ns.add_task(_task)
tests = Collection("test")
tests.add_task(test_all, name="all", default=True)
tests.add_task(test_journey, name="journey")
tests.add_task(test_aws, name="aws")
ns.add_collection(tests)
example = Collection("example")
example.add_task(example_deploy, name="deploy")
example.add_task(example_destroy, name="destroy")
ns.add_collection(example)
