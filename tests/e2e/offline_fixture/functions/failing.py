"""Raises, so its caller sees Lambda's error shape."""


def handler(event, context):
    raise ValueError("boom")
