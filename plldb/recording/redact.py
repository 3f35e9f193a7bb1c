"""Redaction of recorded invocations: secret headers, AWS keys and the developer's own rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from plldb.errors import PlldbError

REDACTED = "[redacted]"

_SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})
_HEADER_MAPS = frozenset({"headers", "multivalueheaders"})
# HTTP API (payload 2.0) moves the Cookie header of a request and Set-Cookie of an answer here.
_COOKIE_LISTS = frozenset({"cookies"})
_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_SECRET_NAME = re.compile(r"secret|token|password|passwd|credential", re.IGNORECASE)
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])")
# `"aws_secret_access_key": "…"` or `token=…` inside a string, such as a JSON or form body.
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>[\w-]*(?:secret|token|password|passwd|credential)[\w-]*)"
    r"(?P<glue>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>[A-Za-z0-9+/]{40,}={0,2})(?![A-Za-z0-9+/=])",
    re.IGNORECASE,
)
_PATH_STEP = re.compile(r"\.(?P<name>[^.\[\]]+)|\[(?P<index>\d+|\*)\]|\['(?P<quoted>[^']*)'\]")


class RedactionRuleError(PlldbError):
    """A --redact value that is neither a JSON path ($.a.b) nor re:REGEX."""


@dataclass(frozen=True)
class Redactions:
    """The developer's rules: JSON paths from the event's (or answer's) root, and regexes."""

    rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for rule in self.rules:
            _parse(rule)

    @property
    def paths(self) -> list[list[str | int]]:
        return [steps for steps in map(_parse, self.rules) if isinstance(steps, list)]

    @property
    def patterns(self) -> list[re.Pattern[str]]:
        return [found for found in map(_parse, self.rules) if isinstance(found, re.Pattern)]


NO_RULES = Redactions()


def redactions(rules: Iterable[str]) -> Redactions:
    """Checked --redact rules; a bad one raises RedactionRuleError."""
    return Redactions(tuple(rules))


def _parse(rule: str) -> list[str | int] | re.Pattern[str]:
    if rule.startswith("re:"):
        try:
            return re.compile(rule[3:])
        except re.error as error:
            message = f"--redact {rule!r}: not a regular expression: {error}"
            raise RedactionRuleError(message) from None
    if not rule.startswith("$"):
        raise RedactionRuleError(
            f"--redact {rule!r}: give a JSON path such as $.body.card, or re:REGEX"
        )
    steps: list[str | int] = []
    position = 1
    while position < len(rule):
        match = _PATH_STEP.match(rule, position)
        if match is None:
            raise RedactionRuleError(
                f"--redact {rule!r}: cannot read the path at {rule[position:]!r}"
            )
        if match["index"] is not None:
            steps.append("*" if match["index"] == "*" else int(match["index"]))
        else:
            steps.append(match["name"] if match["name"] is not None else match["quoted"])
        position = match.end()
    if not steps:
        raise RedactionRuleError(f"--redact {rule!r}: the path names nothing to redact")
    return steps


def redact(value: Any, rules: Redactions = NO_RULES, *, root: bool = True) -> Any:
    """A copy of `value` with secrets replaced by "[redacted]"; `root` applies the JSON paths."""
    if root:
        for steps in rules.paths:
            value = _redact_path(value, steps)
    return _walk(value, None, tuple(rules.patterns))


def _redact_path(value: Any, steps: Sequence[str | int]) -> Any:
    if not steps:
        return REDACTED
    if isinstance(value, str):
        # API Gateway hands bodies over as JSON text: a path may go on inside it.
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if not isinstance(parsed, (dict, list)):
            return value
        changed = _redact_path(parsed, steps)
        return value if changed == parsed else json.dumps(changed)
    step, rest = steps[0], steps[1:]
    if isinstance(value, dict):
        keys = list(value) if step == "*" else [step] if step in value else []
        return {k: _redact_path(v, rest) if k in keys else v for k, v in value.items()}
    if isinstance(value, list):
        if step == "*":
            return [_redact_path(item, rest) for item in value]
        if isinstance(step, int) and step < len(value):
            return [_redact_path(v, rest) if i == step else v for i, v in enumerate(value)]
    return value


def _walk(value: Any, key: str | None, patterns: tuple[re.Pattern[str], ...]) -> Any:
    if isinstance(value, dict):
        folded = (key or "").lower()
        redacted = {}
        for name, item in value.items():
            new_name = _text(str(name), patterns)
            if folded in _HEADER_MAPS and str(name).lower() in _SECRET_HEADERS:
                item = [REDACTED] * len(item) if isinstance(item, list) else REDACTED
            elif str(name).lower() in _COOKIE_LISTS and isinstance(item, list):
                item = [REDACTED] * len(item)
            redacted[new_name] = _walk(item, str(name), patterns)
        return redacted
    if isinstance(value, list):
        return [_walk(item, key, patterns) for item in value]
    if isinstance(value, str):
        if key is not None and _SECRET_NAME.search(key):
            value = _BASE64_RUN.sub(REDACTED, value)
        return _text(value, patterns)
    return value


def _text(text: str, patterns: tuple[re.Pattern[str], ...]) -> str:
    text = _ACCESS_KEY_ID.sub(REDACTED, text)
    text = _SECRET_ASSIGNMENT.sub(lambda m: f"{m['name']}{m['glue']}{REDACTED}", text)
    for pattern in patterns:
        text = pattern.sub(REDACTED, text)
    return text
