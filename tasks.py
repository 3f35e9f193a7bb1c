"""invoke entry point: the plldb collection plus tasks that only make sense in a checkout."""

from __future__ import annotations

from invoke import Context, task

from plldb.tasks import build_namespace


@task
def test(c: Context):
    """Run the test suite."""
    c.run("python -m pytest", pty=False)


@task
def lint(c: Context):
    """ruff (lint and format check) and cfn-lint on the template."""
    c.run("ruff check .")
    c.run("ruff format --check .")
    c.run("cfn-lint cloudformation/template.yaml")


@task
def demo(c: Context):
    """Bootstrap plldb into moto's server on this machine (no AWS account), then remove it."""
    from invoke.exceptions import Exit

    from plldb.local.bootstrap_demo import run_bootstrap_demo

    for step in run_bootstrap_demo():
        print(f"$ {step.command}")
        print(step.stderr, end="")
        print(step.stdout, end="")
        if step.returncode != 0:
            raise Exit(f"{step.command} failed with exit code {step.returncode}", code=1)
    print("Done: the same commands work against AWS once credentials and a region are set.")


@task
def bench(c: Context):
    """Print the figures: bootstrap, the offline cloud, attach, instrumentation, the relay."""
    c.run("python bench/bench_bootstrap.py")
    c.run("python bench/bench_offline_cloud.py")
    c.run("python bench/bench_attach.py")
    c.run("python bench/bench_instrumentation.py")
    c.run("python bench/bench_relay.py")


ns = build_namespace()
for _task in (test, lint, demo, bench):
    ns.add_task(_task)
