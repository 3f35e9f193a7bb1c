import pytest

from plldb.bootstrap.render import (
    ArtifactLocation,
    artifact_references,
    dump_template,
    load_template,
    render_template,
)
from plldb.errors import TemplateError
from plldb.resources import cloudformation_dir

SOURCE = """
Parameters:
  ArtifactBucket: {Type: String}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Role: !GetAtt Role.Arn
      Code: {S3Bucket: !Ref ArtifactBucket, S3Key: lambda_functions/fn.zip}
  Layer:
    Type: AWS::Lambda::LayerVersion
    Properties:
      Content: {S3Bucket: !Ref ArtifactBucket, S3Key: layer/l.zip}
  Other:
    Type: AWS::Lambda::Function
    Properties:
      Code: {ZipFile: !Sub "print('${AWS::Region}')"}
"""


def _locations(version="v1"):
    return {
        "lambda_functions/fn.zip": ArtifactLocation(
            "plldb/versions/0.1.0/lambda_functions/fn.zip", version
        ),
        "layer/l.zip": ArtifactLocation("plldb/versions/0.1.0/layer/l.zip", version),
    }


def test_short_form_tags_become_long_form():
    template = load_template(SOURCE)
    assert template["Resources"]["Fn"]["Properties"]["Role"] == {"Fn::GetAtt": ["Role", "Arn"]}
    other = template["Resources"]["Other"]["Properties"]["Code"]
    assert other == {"ZipFile": {"Fn::Sub": "print('${AWS::Region}')"}}


def test_render_points_functions_and_layers_at_versioned_objects():
    rendered = render_template(load_template(SOURCE), "bucket-1", _locations("ver-7"))
    assert rendered["Resources"]["Fn"]["Properties"]["Code"] == {
        "S3Bucket": "bucket-1",
        "S3Key": "plldb/versions/0.1.0/lambda_functions/fn.zip",
        "S3ObjectVersion": "ver-7",
    }
    assert rendered["Resources"]["Layer"]["Properties"]["Content"]["S3ObjectVersion"] == "ver-7"
    assert "Parameters" not in rendered  # ArtifactBucket is filled in, nothing left to pass
    assert "ArtifactBucket" not in dump_template(rendered)


def test_a_new_object_version_changes_the_rendered_template():
    template = load_template(SOURCE)
    first = dump_template(render_template(template, "b", _locations("v1")))
    second = dump_template(render_template(template, "b", _locations("v2")))
    assert first != second
    assert load_template(second)["Resources"]["Fn"]["Properties"]["Code"]["S3ObjectVersion"] == "v2"


def test_render_leaves_the_source_template_untouched():
    template = load_template(SOURCE)
    render_template(template, "b", _locations())
    assert artifact_references(template) == {
        "Fn": "lambda_functions/fn.zip",
        "Layer": "layer/l.zip",
    }


def test_an_unpackaged_artifact_is_an_error():
    with pytest.raises(TemplateError, match=r"lambda_functions/fn\.zip"):
        render_template(load_template(SOURCE), "b", {"layer/l.zip": _locations()["layer/l.zip"]})


def test_syntax_error_names_the_line():
    with pytest.raises(TemplateError, match="line 3, column 16"):
        load_template("Resources:\n  A:\n    Type: {a: b: c}\n")


@pytest.mark.parametrize(
    "text",
    [
        "just a string\n",
        "Resources: []\n",
        "Transform: AWS::Serverless-2016-10-31\nResources: {A: {}}\n",
    ],
)
def test_non_templates_and_transforms_are_refused(text):
    with pytest.raises(TemplateError):
        load_template(text)


def test_the_real_template_renders_every_function_and_the_layer():
    source = (cloudformation_dir() / "template.yaml").read_text()
    template = load_template(source)
    references = artifact_references(template)
    functions = sorted(
        path.stem
        for path in (cloudformation_dir() / "lambda_functions").glob("*.py")
        if not path.name.startswith("_")
    )
    assert sorted(references.values()) == sorted(
        [f"lambda_functions/{name}.zip" for name in functions] + ["layer/plldb-debugger-layer.zip"]
    )
    locations = {
        artifact: ArtifactLocation(f"plldb/versions/0.1.0/{artifact}", "v1")
        for artifact in references.values()
    }
    rendered = render_template(template, "bucket-1", locations)
    for logical_id in references:
        properties = rendered["Resources"][logical_id]["Properties"]
        code = properties.get("Code") or properties.get("Content")
        assert code["S3Bucket"] == "bucket-1"
        assert code["S3Key"].startswith("plldb/versions/0.1.0/")
