"""`--parameter Key=Value` for the helper stack, checked against the template's Parameters. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from plldb.errors import UsageError

# Filled in by `plldb bootstrap render`, never by the user.
RESERVED = frozenset({"ArtifactBucket"})


def parse_parameters(given: Iterable[str], declared: Mapping[str, Any]) -> dict[str, str]:
    """{Key: Value} from `Key=Value` strings, each checked against its declaration in the
    template (Type Number with MinValue/MaxValue, AllowedValues, AllowedPattern)."""
    settable = {key: spec for key, spec in declared.items() if key not in RESERVED}
    chosen: dict[str, str] = {}
    for text in given:
        key, equals, value = text.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UsageError(f"--parameter expects Key=Value, not {text!r}")
        if key not in settable:
            known = ", ".join(sorted(settable)) or "none"
            raise UsageError(
                f"--parameter {key}: the helper stack has no such parameter (it has: {known})"
            )
        _check(key, value, settable[key] or {})
        chosen[key] = value
    return chosen


def _check(key: str, value: str, spec: Mapping[str, Any]) -> None:
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--parameter {key} expects a number, not {value!r}") from None
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise UsageError(f"--parameter {key} must be between {low} and {high}, not {value}")
    allowed = spec.get("AllowedValues")
    if allowed and value not in [str(choice) for choice in allowed]:
        choices = ", ".join(str(choice) for choice in allowed)
        raise UsageError(f"--parameter {key} must be one of {choices}, not {value!r}")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, value):
        raise UsageError(f"--parameter {key}: {value!r} does not match {pattern}")
