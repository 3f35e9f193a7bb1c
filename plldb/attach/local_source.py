"""Maps a deployed Lambda function to its handler in the developer's local source tree."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plldb.aws import aws_errors
from plldb.bootstrap.render import load_template
from plldb.errors import TemplateError

logger = logging.getLogger(__name__)

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
_SAM_FUNCTION = "AWS::Serverless::Function"
_FUNCTION_TYPES = (_SAM_FUNCTION, "AWS::Lambda::Function")
_NESTED_STACK_LOCATION = {
    "AWS::CloudFormation::Stack": "TemplateURL",
    "AWS::Serverless::Application": "Location",
}


@dataclass(frozen=True)
class LocalFunction:
    function_name: str
    logical_id: str
    code_dir: Path
    handler: str


class SourceNotFoundError(LookupError):
    """A deployed function whose handler cannot be found in the local source tree."""


def split_handler(handler: str) -> tuple[str, str]:
    """`src/app.handler` -> (`src.app`, `handler`), as Lambda's Python runtime reads it."""
    module, _, attribute = handler.rpartition(".")
    if not module or not attribute:
        raise ValueError(f"handler {handler!r} is not of the form module.function")
    return module.replace("/", "."), attribute


def find_template(template: str | None, cwd: Path) -> Path:
    """The --template path if given, else the first of template.yaml/.yml/.json in cwd."""
    if template:
        path = cwd / template
        if not path.is_file():
            raise TemplateError(f"template {path} not found (given by --template)")
        return path
    for name in TEMPLATE_NAMES:
        if (cwd / name).is_file():
            return cwd / name
    raise TemplateError(
        f"no template.yaml, template.yml or template.json in {cwd}: pass --template PATH"
    )


def stack_functions(cloudformation_client: Any, stack_name: str) -> dict[str, tuple[str, ...]]:
    """Physical function name -> logical ids from the root stack down, nested stacks included."""
    functions: dict[str, tuple[str, ...]] = {}
    with aws_errors(f"listing the resources of stack {stack_name}"):
        _collect_functions(cloudformation_client, stack_name, (), functions)
    return functions


def _collect_functions(
    client: Any, stack: str, chain: tuple[str, ...], functions: dict[str, tuple[str, ...]]
) -> None:
    paginator = client.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            physical_id = resource.get("PhysicalResourceId")
            if resource["ResourceStatus"].startswith("DELETE") or not physical_id:
                continue
            path = (*chain, resource["LogicalResourceId"])
            if resource["ResourceType"] == "AWS::Lambda::Function":
                functions[physical_id] = path
            elif resource["ResourceType"] == "AWS::CloudFormation::Stack":
                _collect_functions(client, physical_id, path, functions)


def _read_template(path: Path) -> dict:
    return load_template(path.read_text(encoding="utf-8"), str(path), allow_transform=True)


def _is_local_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "://" not in value


def _local_dir(base: Path, relative: str) -> Path:
    # normpath, not resolve: __file__ must stay the path the developer's editor knows.
    return Path(os.path.normpath(base / relative))


class SourceMap:
    """Resolves physical function names to local code, from a template and the stack's functions."""

    def __init__(
        self,
        template: Path,
        functions: Mapping[str, tuple[str, ...]] | Callable[[], Mapping[str, tuple[str, ...]]],
    ) -> None:
        """`functions` is the stack's map, or a way to list it when first needed (and again
        when a function is missing from it: the stack may have changed since)."""
        self._root = Path(os.path.abspath(template))
        self._list_functions = functions if callable(functions) else None
        self._functions: dict[str, tuple[str, ...]] | None = (
            None if callable(functions) else dict(functions)
        )
        self._templates: dict[Path, dict] = {}
        self._resolved: dict[str, LocalFunction] = {}
        self._lock = threading.Lock()
        try:
            self._templates[self._root] = _read_template(self._root)
        except (OSError, TemplateError) as error:
            raise TemplateError(f"template {self._root} cannot be read: {error}") from error

    def resolve(self, function_name: str) -> LocalFunction:
        with self._lock:
            if function_name not in self._resolved:
                # Failures are not cached: the developer may fix the source while attached.
                self._resolved[function_name] = self._resolve(function_name)
            return self._resolved[function_name]

    def _chain(self, function_name: str) -> tuple[str, ...] | None:
        if self._functions is None or (
            function_name not in self._functions and self._list_functions is not None
        ):
            self._functions = dict(self._list_functions())  # type: ignore[misc]
        return self._functions.get(function_name)

    def _resolve(self, function_name: str) -> LocalFunction:
        chain = self._chain(function_name)
        if not chain:
            raise SourceNotFoundError(
                f"no local source for function {function_name}: "
                "it is not a function of the attached stack"
            )
        where = f"no local source for function {function_name} ({'/'.join(chain)})"
        path = self._root
        for nested_id in chain[:-1]:
            path = self._nested_template(where, path, nested_id)
        template = self._load(where, path)
        resource = template["Resources"].get(chain[-1])
        if not isinstance(resource, dict):
            raise SourceNotFoundError(f"{where}: {chain[-1]} is not in template {path}")
        if resource.get("Type") not in _FUNCTION_TYPES:
            raise SourceNotFoundError(f"{where}: {chain[-1]} is not a function in template {path}")
        code_dir, handler = _function_code(where, template, resource, path.parent)
        module, _ = split_handler(handler)
        module_path = Path(*module.split("."))
        candidates = (
            code_dir / module_path.with_suffix(".py"),
            code_dir / module_path / "__init__.py",
        )
        if not any(candidate.is_file() for candidate in candidates):
            raise SourceNotFoundError(
                f"{where}: {module_path.with_suffix('.py')} not found under {code_dir}"
            )
        logger.debug("function %s runs %s from %s", function_name, handler, code_dir)
        return LocalFunction(function_name, chain[-1], code_dir, handler)

    def _load(self, where: str, path: Path) -> dict:
        if path not in self._templates:
            try:
                self._templates[path] = _read_template(path)
            except (OSError, TemplateError) as error:
                raise SourceNotFoundError(
                    f"{where}: template {path} cannot be read: {error}"
                ) from None
        return self._templates[path]

    def _nested_template(self, where: str, parent: Path, logical_id: str) -> Path:
        resource = self._load(where, parent)["Resources"].get(logical_id)
        if not isinstance(resource, dict) or resource.get("Type") not in _NESTED_STACK_LOCATION:
            raise SourceNotFoundError(f"{where}: {logical_id} is not a nested stack in {parent}")
        prop = _NESTED_STACK_LOCATION[resource["Type"]]
        location = (resource.get("Properties") or {}).get(prop)
        if not _is_local_path(location):
            raise SourceNotFoundError(
                f"{where}: {logical_id}.{prop} in {parent} is not a local template path"
            )
        return _local_dir(parent.parent, location)


def _function_code(
    where: str, template: dict, resource: dict, template_dir: Path
) -> tuple[Path, str]:
    """The code directory and handler of a SAM or plain Lambda function resource."""
    properties = resource.get("Properties") or {}
    if resource["Type"] == _SAM_FUNCTION:
        defaults = (template.get("Globals") or {}).get("Function") or {}
        handler = properties.get("Handler", defaults.get("Handler"))
        code = properties.get("CodeUri", defaults.get("CodeUri", "."))
    else:
        handler = properties.get("Handler")
        code = properties.get("Code")
    if not isinstance(handler, str):
        raise SourceNotFoundError(f"{where}: the function has no literal Handler")
    try:
        split_handler(handler)
    except ValueError as error:
        raise SourceNotFoundError(f"{where}: {error}") from None
    if _is_local_path(code):
        return _local_dir(template_dir, code), handler
    source_dir = ((resource.get("Metadata") or {}).get("plldb") or {}).get("SourceDir")
    if _is_local_path(source_dir):
        return _local_dir(template_dir, source_dir), handler
    return template_dir, handler
