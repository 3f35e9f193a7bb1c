"""plldb: relay invocations of deployed AWS Lambda functions to a local debugger."""

__version__ = "0.1.0"
