"""Sleeps past its one-second timeout."""

import time


def handler(event, context):
    time.sleep(3)
    return "too late"
