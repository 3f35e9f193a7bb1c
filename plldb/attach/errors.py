"""The errors of attaching: each says in one line what failed and what to do about it."""

from __future__ import annotations

from plldb.errors import PlldbError


class AttachError(PlldbError):
    """Attaching the debugger failed for a reason the user can act on."""


class BootstrapMissingError(AttachError):
    """Stack `plldb` is missing, or lacks the outputs attach needs."""


class EndpointError(AttachError):
    """An endpoint URL given as an override is unusable."""


class TransientAttachError(AttachError):
    """A failure that may pass by itself (network, throttling, a 5xx): worth a retry."""


class ManagementApiUnreachableError(TransientAttachError):
    """The management REST API could not be reached (DNS, refused connection, timeout)."""


class ManagementApiUnavailableError(TransientAttachError):
    """The management REST API answered 429 or 5xx."""


class SessionRequestError(AttachError):
    """The management REST API refused to create a session (a 4xx answer)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class SessionConflictError(SessionRequestError):
    """Another debugger is attached to the stack (409); --force takes over."""

    def __init__(self, message: str, active_since: str | None) -> None:
        super().__init__(message, 409)
        self.active_since = active_since


class ManagementApiForbiddenError(SessionRequestError):
    """API Gateway refused the credentials or their permissions (403)."""

    def __init__(self, message: str, error_type: str | None) -> None:
        super().__init__(message, 403)
        self.error_type = error_type


class WebSocketUnreachableError(TransientAttachError):
    """The WebSocket API could not be reached or its handshake failed for a passing reason."""


class WebSocketRefusedError(AttachError):
    """The WebSocket API refused the handshake (401/403): the session expired or was used."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class SessionClosedError(AttachError):
    """The backend ended the session (another `attach --force` took over): no reconnect."""


class ConnectionLostError(AttachError):
    """The connection dropped and every attempt to reconnect failed."""
