"""Renders template.yaml for one set of uploaded artifacts: pure, no AWS calls."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from plldb.errors import TemplateError

ARTIFACT_BUCKET_PARAMETER = "ArtifactBucket"
_CODE_PROPERTY = {"AWS::Lambda::Function": "Code", "AWS::Lambda::LayerVersion": "Content"}
_FUNCTION_TAGS = (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAZs", "If", "ImportValue", "Join",
    "Not", "Or", "Select", "Split", "Sub", "Transform",
)  # fmt: skip


@dataclass(frozen=True)
class ArtifactLocation:
    key: str
    version_id: str | None


# libyaml's parser and emitter when PyYAML was built with them (its wheels are): about ten times
# faster than the pure-Python ones on plldb's template, which bootstrap reads three times.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _TemplateLoader(_SafeLoader):
    """A safe loader that also reads CloudFormation's short-form tags (!Ref, !GetAtt, …)."""


def _construct(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _add_tag(tag: str, key: str) -> None:
    _TemplateLoader.add_constructor(f"!{tag}", lambda loader, node: {key: _construct(node, loader)})


for _tag in _FUNCTION_TAGS:
    _add_tag(_tag, f"Fn::{_tag}")
_add_tag("Ref", "Ref")
_add_tag("Condition", "Condition")


def _construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    value = _construct(node, loader)
    if isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::GetAtt": value}


_TemplateLoader.add_constructor("!GetAtt", _construct_get_att)


def load_template(text: str, source: str = "template.yaml", allow_transform: bool = False) -> dict:
    """Parse a template (YAML or JSON), short-form tags included; a syntax error names the line.

    plldb's own template is vanilla CloudFormation; a target stack's may be SAM
    (`allow_transform`), which is read but never deployed by plldb.
    """
    try:
        template = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise TemplateError(f"{source}{where}: {problem}") from error
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{source}: not a CloudFormation template (no Resources mapping)")
    if "Transform" in template and not allow_transform:
        raise TemplateError(f"{source}: plldb deploys vanilla CloudFormation; remove Transform")
    return template


def artifact_references(template: dict) -> dict[str, str]:
    """Logical id -> artifact path, for every resource whose code comes from the artifact bucket."""
    references = {}
    for logical_id, resource in template["Resources"].items():
        prop = _CODE_PROPERTY.get(resource.get("Type", ""))
        code = (resource.get("Properties") or {}).get(prop) if prop else None
        if isinstance(code, dict) and code.get("S3Bucket") == {"Ref": ARTIFACT_BUCKET_PARAMETER}:
            if not isinstance(code.get("S3Key"), str):
                raise TemplateError(f"{logical_id}: {prop}.S3Key must name a packaged artifact")
            references[logical_id] = code["S3Key"]
    return references


def render_template(template: dict, bucket: str, artifacts: dict[str, ArtifactLocation]) -> dict:
    """Point each function and layer at its uploaded artifact, by key and object version.

    The object version is what makes a changed zip under the same plldb version reach the
    deployed functions: CloudFormation sees a new S3ObjectVersion and updates the code.
    """
    rendered = copy.deepcopy(template)
    for logical_id, artifact in artifact_references(template).items():
        if artifact not in artifacts:
            known = ", ".join(sorted(artifacts)) or "none"
            raise TemplateError(
                f"{logical_id} refers to artifact {artifact!r}, which was not packaged "
                f"(packaged: {known})"
            )
        resource = rendered["Resources"][logical_id]
        location = artifacts[artifact]
        code: dict[str, Any] = {"S3Bucket": bucket, "S3Key": location.key}
        if location.version_id and location.version_id != "null":
            code["S3ObjectVersion"] = location.version_id
        resource["Properties"][_CODE_PROPERTY[resource["Type"]]] = code
    parameters = rendered.get("Parameters", {})
    parameters.pop(ARTIFACT_BUCKET_PARAMETER, None)
    if not parameters:
        rendered.pop("Parameters", None)
    return rendered


def dump_template(template: dict) -> str:
    return yaml.dump(
        template, Dumper=_SafeDumper, sort_keys=False, default_flow_style=False, width=100
    )
