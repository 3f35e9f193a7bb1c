"""The errors plldb raises for conditions a user can cause and fix."""

from __future__ import annotations


class PlldbError(Exception):
    """An error with a message meant for the user: printed as one line, no traceback."""


class ConfigurationError(PlldbError):
    """Credentials, region or profile are missing or unusable."""


class UsageError(PlldbError):
    """A command-line value that cannot be used as given."""


class AwsOperationError(PlldbError):
    """An AWS call failed; the message says which step and what to do."""


class MissingStepError(PlldbError):
    """A step ran before the step whose output it needs."""


class TemplateError(PlldbError):
    """The CloudFormation template cannot be read or rendered."""


class DeployError(PlldbError):
    """CloudFormation could not create, update or delete the stack."""

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons or []
