"""The `plldb` console script: an invoke Program over the same collection `inv` uses."""

from __future__ import annotations

import sys

from invoke import Collection, Program

from plldb import __version__
from plldb.tasks import build_namespace


def join_spaced_tasks(argv: list[str], namespace: Collection) -> list[str]:
    """Let `plldb bootstrap setup` mean `plldb bootstrap.setup`, as invoke spells it."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        collection = namespace.collections.get(token)
        following = argv[index + 1] if index + 1 < len(argv) else None
        if collection is not None and following in collection.task_names:
            joined.append(f"{token}.{following}")
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


def main(argv: list[str] | None = None) -> None:
    namespace = build_namespace()
    argv = list(sys.argv if argv is None else argv)
    program = Program(namespace=namespace, version=__version__, name="plldb", binary="plldb")
    program.run([argv[0], *join_spaced_tasks(argv[1:], namespace)])
