"""Answers with its own payload, and says where it ran."""

import os


def handler(event, context):
    print(f"plain handler got {event!r}")
    return {
        "echo": event,
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "stage": os.environ.get("STAGE"),
    }
