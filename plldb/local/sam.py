"""SAM templates (`Transform: AWS::Serverless-2016-10-31`), expanded as CloudFormation does.

moto's CloudFormation has no transforms: it would skip every AWS::Serverless::* resource. The
offline cloud expands such a template with AWS's own translator (aws-sam-translator, the
library the SAM CLI and CloudFormation's transform use) when moto parses it, so a SAM stack
deploys its functions, and `AutoPublishAlias` its AWS::Lambda::Version and Alias, which the
repairs then complete like any others (docs/offline-cloud.md).

The expansion sees the stack's parameter values, as CloudFormation's transform does (a new
`CodeUri` given as a parameter publishes a new version). Difference from AWS: GetTemplate
answers the expanded template (AWS answers the original unless TemplateStage is Processed).
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
_PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}


class SamTemplateError(ValueError):
    """The translator refused the template; the message is its own, as CloudFormation shows."""


def uses_sam(template: Any) -> bool:
    transform = template.get("Transform") if isinstance(template, dict) else None
    names = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in names


def expand(
    template: dict[str, Any], account_id: str, region: str, values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`template` with its SAM resources expanded into CloudFormation ones; `values` are the
    stack's parameter values (a parameter's Default where none is given)."""
    import boto3.session
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    parameters = {
        key: spec["Default"]
        for key, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    parameters.update(values or {})
    parameters.update(_PSEUDO, **{"AWS::AccountId": account_id, "AWS::Region": region})
    fragment = json.loads(json.dumps(template))
    to_py27_compatible_template(fragment, parameters)
    # The session only tells the translator the region (for ARNs); it makes no calls.
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        expanded = translator.translate(
            fragment, parameter_values=parameters, get_managed_policy_map=_managed_policy_arns
        )
    except InvalidDocumentException as error:
        causes = "; ".join(str(cause) for cause in getattr(error, "causes", [])) or str(error)
        raise SamTemplateError(f"Transform {SAM_TRANSFORM} failed: {causes}") from error
    return undo_mark_unicode_str_in_template(expanded)


@functools.cache
def _managed_policy_arns() -> dict[str, str]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    policies = json.loads(aws_managed_policies_data)
    return {name: f"arn:aws:iam::aws:policy{spec['Path']}{name}" for name, spec in policies.items()}


def install(stack_class: Any, change_set_class: Any) -> None:
    """Expand SAM templates wherever moto parses a stack's or a change set's template."""
    for model in (stack_class, change_set_class):
        _patch_parse(model)
    _patch_stack_init(stack_class)


def _patch_stack_init(stack_class: Any) -> None:
    # moto's Stack parses its template before it keeps its parameters; the expansion needs them.
    original = stack_class.__init__
    signature = inspect.signature(original)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self.parameters = signature.bind(self, *args, **kwargs).arguments.get("parameters") or {}
        original(self, *args, **kwargs)

    stack_class.__init__ = __init__


def _patch_parse(model: Any) -> None:
    original = model._parse_template

    def _parse_template(self: Any) -> None:
        original(self)
        if not uses_sam(self.template_dict):
            return
        # arn:aws:cloudformation:REGION:ACCOUNT:stack/...: set before the template is parsed
        _, _, _, region, account_id, *_ = self.stack_id.split(":")
        try:
            values = dict(getattr(self, "parameters", None) or {})
            expanded = expand(self.template_dict, account_id, region, values)
        except SamTemplateError as error:
            from moto.cloudformation.exceptions import ValidationError

            raise ValidationError(message=str(error)) from error
        self.template_dict = expanded
        self.template = json.dumps(expanded)

    model._parse_template = _parse_template
