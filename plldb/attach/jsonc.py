"""JSON with comments and trailing commas (VS Code's launch.json): read it, edit it in place."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<line_comment>//[^\n]*)
    | (?P<block_comment>/\*.*?\*/)
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<punct>[{}\[\]:,])
    | (?P<literal>[^\s{}\[\]:,"/]+)
    """,
    re.VERBOSE | re.DOTALL,
)


class JsoncError(ValueError):
    """The text is not JSON even once comments and trailing commas are allowed."""


@dataclass
class Node:
    """A parsed value and where it sits in the text; arrays keep their items' nodes."""

    value: Any
    start: int
    end: int
    items: list[Node] = field(default_factory=list)
    members: dict[str, Node] = field(default_factory=dict)
    close: int = 0  # position of an array's `]` or an object's `}`


def _tokens(text: str) -> list[tuple[str, str, int]]:
    found, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            line = text.count("\n", 0, position) + 1
            raise JsoncError(f"unexpected {text[position]!r} on line {line}")
        kind = match.lastgroup or ""
        if kind not in ("space", "line_comment", "block_comment"):
            found.append((kind, match.group(), position))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def fail(self, what: str) -> JsoncError:
        if self.index >= len(self.tokens):
            return JsoncError(f"{what} at the end of the file")
        line = self.text.count("\n", 0, self.tokens[self.index][2]) + 1
        return JsoncError(f"{what} on line {line}")

    def peek(self) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            raise self.fail("unexpected end")
        return self.tokens[self.index]

    def take(self, punct: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if punct is not None and token[1] != punct:
            raise self.fail(f"expected {punct!r}")
        self.index += 1
        return token

    def value(self) -> Node:
        kind, text, start = self.peek()
        if text == "{":
            return self.container("{", "}", self.member)
        if text == "[":
            return self.container("[", "]", self.item)
        if kind not in ("string", "literal"):
            raise self.fail(f"unexpected {text!r}")
        self.take()
        try:
            return Node(json.loads(text), start, start + len(text))
        except ValueError:
            raise self.fail(f"{text!r} is not a JSON value") from None

    def container(self, opening: str, closing: str, entry: Any) -> Node:
        start = self.take(opening)[2]
        node = Node({} if opening == "{" else [], start, start)
        while self.peek()[1] != closing:
            entry(node)
            if self.peek()[1] == ",":
                self.take()  # a trailing comma before the closing bracket is allowed
            elif self.peek()[1] != closing:
                raise self.fail(f"expected ',' or {closing!r}")
        node.close = self.take(closing)[2]
        node.end = node.close + 1
        return node

    def member(self, node: Node) -> None:
        kind, text, _ = self.take()
        if kind != "string":
            raise self.fail("expected a quoted key")
        self.take(":")
        key = json.loads(text)
        node.members[key] = self.value()
        node.value[key] = node.members[key].value

    def item(self, node: Node) -> None:
        child = self.value()
        node.items.append(child)
        node.value.append(child.value)


def parse(text: str) -> Node:
    """The document's root node; raises JsoncError saying what is wrong and where."""
    parser = _Parser(text)
    root = parser.value()
    if parser.index != len(parser.tokens):
        raise parser.fail("unexpected text after the end")
    return root


def _indent_at(text: str, position: int) -> str:
    line_start = text.rfind("\n", 0, position) + 1
    line = text[line_start:position]
    return line[: len(line) - len(line.lstrip())]


def _dump(value: Any, indent: str) -> str:
    return json.dumps(value, indent=4).replace("\n", "\n" + indent)


def replace_item(text: str, item: Node, value: Any) -> str:
    """The text with one array item replaced by `value`, indented like the item was."""
    indent = _indent_at(text, item.start)
    return text[: item.start] + _dump(value, indent) + text[item.end :]


def append_item(text: str, array: Node, value: Any) -> str:
    """The text with `value` added as the array's last item; comments and layout kept."""
    if array.items:
        last = array.items[-1]
        indent = _indent_at(text, last.start)
        # A trailing comma may follow the last item (among comments): add after it.
        commas = [t for t in _tokens(text[last.end : array.close]) if t[1] == ","]
        at = last.end + commas[0][2] + 1 if commas else last.end
        comma = "" if commas else ","
        return text[:at] + f"{comma}\n{indent}{_dump(value, indent)}" + text[at:]
    outer = _indent_at(text, array.start)
    indent = outer + "    "
    inside = text[array.start + 1 : array.close]
    if not inside.strip():
        inside = "\n" + outer
    added = f"\n{indent}{_dump(value, indent)}"
    return text[: array.start + 1] + added + inside + text[array.close :]
