"""SourceMap and find_template: SAM and plain templates, nested stacks, missing sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plldb.attach.local_source import (
    LocalFunction,
    SourceMap,
    SourceNotFoundError,
    find_template,
    split_handler,
)
from plldb.errors import TemplateError

SAM_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Handler: app.handler
    CodeUri: src/default
    Runtime: python3.12
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/orders
      Environment:
        Variables:
          TABLE: !Ref Table
          QUEUE: !GetAtt Queue.Arn
  Reports:
    Type: AWS::Serverless::Function
    Properties:
      Handler: reports.main.run
  Table:
    Type: AWS::DynamoDB::Table
"""


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_sam_function_uses_its_code_uri_and_the_global_handler(tmp_path):
    template = _write(tmp_path / "template.yaml", SAM_TEMPLATE)
    _write(tmp_path / "src/orders/app.py")
    sources = SourceMap(template, {"my-app-Orders-ab12": ("Orders",)})
    assert sources.resolve("my-app-Orders-ab12") == LocalFunction(
        "my-app-Orders-ab12", "Orders", tmp_path / "src/orders", "app.handler"
    )


def test_sam_function_falls_back_to_the_global_code_uri_and_finds_a_package(tmp_path):
    template = _write(tmp_path / "template.yaml", SAM_TEMPLATE)
    _write(tmp_path / "src/default/reports/main/__init__.py")
    resolved = SourceMap(template, {"reports-fn": ("Reports",)}).resolve("reports-fn")
    assert (resolved.code_dir, resolved.handler) == (tmp_path / "src/default", "reports.main.run")


def test_sam_function_without_any_code_uri_runs_from_the_template_directory(tmp_path):
    template = _write(
        tmp_path / "template.yml",
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      Handler: src/app.handler\n",
    )
    _write(tmp_path / "src/app.py")
    assert SourceMap(template, {"fn": ("Fn",)}).resolve("fn").code_dir == tmp_path


def test_plain_function_with_a_local_code_path(tmp_path):
    template = _write(
        tmp_path / "template.yaml",
        "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n"
        "    Properties:\n      Handler: pkg.mod.handler\n      Code: ./functions/fn/\n"
        "      Role: !GetAtt Role.Arn\n",
    )
    _write(tmp_path / "functions/fn/pkg/mod.py")
    resolved = SourceMap(template, {"fn": ("Fn",)}).resolve("fn")
    assert resolved.code_dir == tmp_path / "functions/fn"


def test_plain_function_in_s3_uses_the_plldb_source_dir_metadata(tmp_path):
    resources = {
        "WithMeta": {
            "Type": "AWS::Lambda::Function",
            "Metadata": {"plldb": {"SourceDir": "lambda/with_meta"}},
            "Properties": {
                "Handler": "index.handler",
                "Code": {"S3Bucket": {"Ref": "Bucket"}, "S3Key": "with_meta.zip"},
            },
        },
        "Inline": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Handler": "index.handler", "Code": {"ZipFile": "def handler(): ..."}},
        },
    }
    template = _write(tmp_path / "template.json", json.dumps({"Resources": resources}))
    _write(tmp_path / "lambda/with_meta/index.py")
    _write(tmp_path / "index.py")
    sources = SourceMap(template, {"a": ("WithMeta",), "b": ("Inline",)})
    assert sources.resolve("a").code_dir == tmp_path / "lambda/with_meta"
    assert sources.resolve("b").code_dir == tmp_path


def test_function_in_a_nested_stack_follows_template_url_and_location(tmp_path):
    _write(
        tmp_path / "template.yaml",
        "Resources:\n"
        "  Api:\n    Type: AWS::CloudFormation::Stack\n"
        "    Properties:\n      TemplateURL: stacks/api.yaml\n"
        "  Jobs:\n    Type: AWS::Serverless::Application\n"
        "    Properties:\n      Location: ./jobs/template.yaml\n",
    )
    _write(
        tmp_path / "stacks/api.yaml",
        "Resources:\n  Inner:\n    Type: AWS::CloudFormation::Stack\n"
        "    Properties:\n      TemplateURL: ../inner/template.yaml\n",
    )
    _write(
        tmp_path / "inner/template.yaml",
        "Resources:\n  Orders:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      Handler: app.handler\n      CodeUri: orders\n",
    )
    _write(
        tmp_path / "jobs/template.yaml",
        "Resources:\n  Cleanup:\n    Type: AWS::Lambda::Function\n"
        "    Properties:\n      Handler: cleanup.handler\n      Code: src\n",
    )
    _write(tmp_path / "inner/orders/app.py")
    _write(tmp_path / "jobs/src/cleanup.py")
    sources = SourceMap(
        tmp_path / "template.yaml",
        {"orders-fn": ("Api", "Inner", "Orders"), "cleanup-fn": ("Jobs", "Cleanup")},
    )
    orders = sources.resolve("orders-fn")
    assert (orders.logical_id, orders.code_dir) == ("Orders", tmp_path / "inner/orders")
    assert sources.resolve("cleanup-fn").code_dir == tmp_path / "jobs/src"


def test_nested_stack_from_s3_is_not_followed(tmp_path):
    template = _write(
        tmp_path / "template.yaml",
        "Resources:\n  Api:\n    Type: AWS::CloudFormation::Stack\n"
        "    Properties:\n      TemplateURL: https://bucket.s3.amazonaws.com/api.yaml\n",
    )
    with pytest.raises(SourceNotFoundError, match=r"Api\.TemplateURL .* not a local template"):
        SourceMap(template, {"fn": ("Api", "Fn")}).resolve("fn")


def test_missing_module_file_names_the_function_and_the_file(tmp_path):
    template = _write(tmp_path / "template.yaml", SAM_TEMPLATE)
    (tmp_path / "src/orders").mkdir(parents=True)
    sources = SourceMap(template, {"my-app-Orders-ab12": ("Orders",)})
    with pytest.raises(SourceNotFoundError) as raised:
        sources.resolve("my-app-Orders-ab12")
    message = str(raised.value)
    assert message.startswith("no local source for function my-app-Orders-ab12 (Orders): ")
    assert "app.py not found under" in message
    assert "\n" not in message
    # Not cached: creating the file while attached makes the next resolve succeed.
    _write(tmp_path / "src/orders/app.py")
    assert sources.resolve("my-app-Orders-ab12").handler == "app.handler"


def test_function_missing_from_the_template(tmp_path):
    template = _write(tmp_path / "template.yaml", SAM_TEMPLATE)
    sources = SourceMap(template, {"my-app-Billing-9f": ("Billing",), "t": ("Table",)})
    with pytest.raises(SourceNotFoundError, match=r"my-app-Billing-9f \(Billing\).*is not in"):
        sources.resolve("my-app-Billing-9f")
    with pytest.raises(SourceNotFoundError, match="is not a function"):
        sources.resolve("t")


def test_function_not_in_the_stack(tmp_path):
    template = _write(tmp_path / "template.yaml", SAM_TEMPLATE)
    with pytest.raises(SourceNotFoundError, match="other-fn"):
        SourceMap(template, {}).resolve("other-fn")


def test_unreadable_template_is_a_template_error(tmp_path):
    template = _write(tmp_path / "template.yaml", "Resources: [unclosed\n")
    with pytest.raises(TemplateError):
        SourceMap(template, {})


def test_split_handler_reads_paths_and_packages():
    assert split_handler("src/app.handler") == ("src.app", "handler")
    assert split_handler("pkg.mod.handler") == ("pkg.mod", "handler")
    with pytest.raises(ValueError):
        split_handler("handler")


def test_find_template_prefers_the_option_then_the_standard_names(tmp_path):
    _write(tmp_path / "template.json", "{}")
    assert find_template(None, tmp_path) == tmp_path / "template.json"
    _write(tmp_path / "template.yaml", "{}")
    assert find_template(None, tmp_path) == tmp_path / "template.yaml"
    _write(tmp_path / "infra/stack.yaml", "{}")
    assert find_template("infra/stack.yaml", tmp_path) == tmp_path / "infra/stack.yaml"


def test_find_template_errors_are_user_errors(tmp_path):
    with pytest.raises(TemplateError, match="--template"):
        find_template(None, tmp_path)
    with pytest.raises(TemplateError, match=r"missing\.yaml"):
        find_template("missing.yaml", tmp_path)
