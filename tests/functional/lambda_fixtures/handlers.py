"""Handlers the Lambda front tests deploy to moto; each shows one behaviour of the runtime."""

import json
import os
import time


def echo(event, context):
    print(f"echo got {json.dumps(event)}")
    return event


def describe(event, context):
    names = [
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION", "_HANDLER",
        "LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API", "AWS_EXECUTION_ENV", "GREETING",
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ACCESS_KEY_ID",
    ]  # fmt: skip
    return {
        "environ": {name: os.environ.get(name) for name in names},
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "invoked_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }


def fail(event, context):
    raise ValueError(f"bad input: {event.get('why')}")


def sleep(event, context):
    time.sleep(event.get("seconds", 0))
    return {"slept": event.get("seconds", 0), "pid": os.getpid(), "event": event}


def crash(event, context):
    os._exit(3)


def wrapped(event, context):
    return {name: os.environ.get(name) for name in ("WRAPPED_BY", "WRAPPER_ARGS")}


def layer_import(event, context):
    import layer_greeting

    return {"greeting": layer_greeting.greet(event["name"])}


def put_object(event, context):
    import boto3  # here, not at the top: it costs every other handler's cold start 0.3 s

    boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"written")
    return {"ok": True}
