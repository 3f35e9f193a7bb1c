"""Runs behind the layer's exec wrapper, and imports the layer's module."""

import os

import fixture_layer


def handler(event, context):
    return {"wrapped_by": os.environ.get("WRAPPED_BY"), "layer": fixture_layer.NAME}
