"""Says which version ran, with which variables, behind which wrapper and layer."""

import os

import fixture_layer


def handler(event, context):
    return {
        "label": os.environ.get("LABEL"),
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "wrapped_by": os.environ.get("WRAPPED_BY"),
        "layer": fixture_layer.NAME,
        "invoked_arn": context.invoked_function_arn,
    }
