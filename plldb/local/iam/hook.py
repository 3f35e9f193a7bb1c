"""IAM enforcement inside moto's server: every request authenticated and authorized by us.

moto's own check evaluates most services against resource "*", so least-privilege statements
never match; while enforcement is on, its check is replaced by plldb's (see docs/offline-cloud.md).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from plldb.local.gateway.sigv4 import SignedRequest
from plldb.local.iam import propagation
from plldb.local.iam.enforcer import Refusal, authenticate, authorize, requirements
from plldb.local.iam.operations import read_operation
from plldb.local.iam.requests import Scope, s3_authorization

log = logging.getLogger(__name__)
_current = threading.local()  # the raw request moto is handling on this thread
_lock = threading.Lock()
_installed = 0
_original: Any = None

_JSON_CODES = {"denied": "AccessDeniedException", "signature": "InvalidSignatureException",
               "unknown key": "UnrecognizedClientException", "token": "UnrecognizedClientException",
               "missing": "MissingAuthenticationTokenException"}  # fmt: skip
_XML_CODES = {"denied": "AccessDenied", "signature": "SignatureDoesNotMatch",
              "unknown key": "InvalidClientTokenId", "token": "InvalidClientTokenId",
              "missing": "MissingAuthenticationToken"}  # fmt: skip
_S3_CODES = {**_XML_CODES, "unknown key": "InvalidAccessKeyId", "token": "InvalidToken"}
_JSON_SERVICES = {"dynamodb", "lambda", "logs", "awslambda"}


def capture_requests(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware keeping each request's bytes as signed, for the check below."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        body = stream.read(int(length)) if length else stream.read() if _chunked(environ) else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        path, _, query = raw.partition("?")
        headers = [(key[5:].replace("_", "-").title(), value)
                   for key, value in environ.items() if key.startswith("HTTP_")]  # fmt: skip
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers.append((key.replace("_", "-").title(), environ[key]))
        _current.request = SignedRequest(
            environ["REQUEST_METHOD"], path, query, tuple(headers), body
        )
        try:
            return app(environ, start_response)
        finally:
            _current.request = None

    return middleware


def _chunked(environ: dict[str, Any]) -> bool:
    return environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"


def install() -> None:
    """Replace moto's check with plldb's, for every moto server in this process (counted)."""
    global _installed, _original
    from moto.core.authorization import ActionAuthenticatorMixin

    with _lock:
        if _installed == 0:
            _original = ActionAuthenticatorMixin._authenticate_and_authorize_action
            ActionAuthenticatorMixin._authenticate_and_authorize_action = _check
        _installed += 1


def uninstall() -> None:
    global _installed
    from moto.core.authorization import ActionAuthenticatorMixin

    with _lock:
        _installed -= 1
        if _installed == 0:
            ActionAuthenticatorMixin._authenticate_and_authorize_action = _original


def _check(response: Any, iam_request_cls: type, resource: str = "*") -> None:
    request = getattr(_current, "request", None)
    if request is None:  # moto called in-process (mock_aws), not through an enforcing server
        return _original(response, iam_request_cls, resource)
    is_s3 = iam_request_cls.__name__ == "S3IAMRequest"
    try:
        allowed = authenticate(request)
        if is_s3:
            needed = s3_authorization(
                response._get_action(), resource, request.method, request.query, request.body
            )
        else:
            scope = Scope(allowed.region, allowed.identity.account_id, _stack_lookup(allowed))
            needed = requirements(allowed, request, scope)
        authorize(allowed, needed)
        if not is_s3 and allowed.service == "iam" and propagation.delaying():
            propagation.record(read_operation("iam", request), allowed.identity.account_id)
    except Refusal as refusal:
        log.info("refused %s %s: %s", request.method, request.path, refusal.message)
        raise _error(refusal, "s3" if is_s3 else response.service_name) from None
    return None


def _error(refusal: Refusal, service: str) -> Exception:
    from moto.core.exceptions import JsonRESTError, _RESTError

    if service in _JSON_SERVICES:
        error: Any = JsonRESTError(_JSON_CODES[refusal.kind], refusal.message)
    elif service == "s3":
        error = _RESTError(_S3_CODES[refusal.kind], refusal.message)
        # S3's errors are a bare <Error>, not the query protocol's <ErrorResponse>.
        error.description = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
            f"{escape(_S3_CODES[refusal.kind])}</Code><Message>{escape(refusal.message)}"
            "</Message></Error>"
        )
    else:
        error = _RESTError(_XML_CODES[refusal.kind], refusal.message)
    error.code = 403
    return error


def _stack_lookup(allowed: Any) -> Callable[[str], str | None]:
    def stack_id(name: str) -> str | None:
        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[allowed.identity.account_id][allowed.region]
        for stack in list(backend.stacks.values()):
            if stack.name == name and stack.status != "DELETE_COMPLETE":
                return stack.stack_id
        return None

    return stack_id
