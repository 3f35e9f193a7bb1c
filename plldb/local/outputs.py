"""A stack's outputs and exports in moto, evaluated once by the offline cloud and then kept.

moto evaluates a stack's outputs again on every DescribeStacks. That gives a different answer
before and after a repair, and, on a deleted stack, builds the tables its outputs refer to
again. CloudFormation evaluates outputs once per operation, so the offline cloud does too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OutputValue:
    key: str
    value: str
    description: str | None = None
    export_name: str | None = None


class FrozenOutputs(Mapping):
    """Stands in for moto's OutputMap (a Mapping of key -> Output, plus `exports`)."""

    def __init__(self, stack_id: str, values: list[OutputValue]) -> None:
        from moto.cloudformation.parsing import Output

        self._stack_id = stack_id
        self._values = values
        self._outputs = {v.key: Output(v.key, v.value, v.description or "") for v in values}

    def __getitem__(self, key: str) -> Any:
        return self._outputs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    @property
    def outputs(self) -> list[str]:
        return list(self._outputs)

    @property
    def exports(self) -> list[Any]:
        from moto.cloudformation.parsing import Export

        return [
            Export(self._stack_id, v.export_name, v.value) for v in self._values if v.export_name
        ]


def moto_stack(account_id: str, region: str, stack_id: str) -> Any:
    """moto's own object for a stack, live or deleted; None when it has none."""
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[account_id][region]
    return backend.stacks.get(stack_id) or backend.deleted_stacks.get(stack_id)


def freeze(stack: Any, values: list[OutputValue]) -> None:
    """Make `values` the stack's outputs, and its exports the account's, from now on."""
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[stack.account_id][stack.region_name]
    for name in [
        name for name, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id
    ]:
        del backend.exports[name]
    stack.output_map = FrozenOutputs(stack.stack_id, values)
    for export in stack.output_map.exports:
        backend.exports[export.name] = export


def current_value(stack: Any, key: str) -> str | None:
    """What moto makes of one output now (None when it cannot evaluate it)."""
    try:
        output = stack.output_map.get(key)
    except Exception:  # moto fails on some intrinsics; the caller decides what to show
        return None
    return None if output is None else str(output.value)


def forget(stack: Any) -> None:
    """A deleted stack shows no outputs, and reading them must build nothing again."""
    stack.output_map = FrozenOutputs(stack.stack_id, [])
