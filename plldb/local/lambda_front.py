"""The offline Lambda endpoint: Invoke runs the deployed code here, the rest goes to moto."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from plldb.local.aliases import resolve_qualifier
from plldb.local.execution import CloudContext, new_request_id, new_trace_id
from plldb.local.function_store import (
    FunctionNotFoundError,
    FunctionSpec,
    load_function,
    parse_function_ref,
)
from plldb.local.httpserver import LoopbackHTTPServer
from plldb.local.kms_environment import (
    Decrypter,
    apply_key_update,
    caller_decrypter,
    rewrite_answer,
    setting_decrypter,
    shows_configurations,
)
from plldb.local.runtime_api import Invocation, Outcome
from plldb.local.service import Service
from plldb.local.specs import InvokeResult
from plldb.local.warm_pool import PoolClosedError, WarmPool

logger = logging.getLogger(__name__)

MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # Lambda's limit on a RequestResponse request body
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")
_INVOKE_ASYNC = re.compile(r"^/2014-11-13/functions/(?P<function>[^/]+)/invoke-async/?$")
_STREAM = re.compile(
    r"^/2021-11-15/functions/(?P<function>[^/]+)/response-streaming-invocations/?$"
)
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "expect", "content-length",
}  # fmt: skip


class LambdaApiError(Exception):
    """An error Lambda's API answers with (status, X-Amzn-ErrorType and a message)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class _Answer:
    result: InvokeResult
    request_id: str
    version: str


class LambdaFront(Service):
    """Serves the Lambda API on 127.0.0.1: Invoke runs code locally, everything else is moto's."""

    def __init__(
        self,
        moto_endpoint: str,
        region: str,
        workdir: Path,
        account_id: str = "123456789012",
        child_environment: Mapping[str, str] | None = None,
        enforce_iam: bool = False,
        kms_decrypt_allowed: bool = False,
    ) -> None:
        """`child_environment`: variables every runtime gets last (endpoints, settings).

        Without it a runtime gets AWS_ENDPOINT_URL* from this process (moto and this front by
        default). Credentials are always a session of the function's execution role, as in
        Lambda. `enforce_iam`: Invoke needs a valid signature and lambda:InvokeFunction.
        `kms_decrypt_allowed`: without enforcement, whether callers reading a configuration
        see variables under a customer managed key (with it, their policies decide).
        """
        self.moto_endpoint = moto_endpoint.rstrip("/")
        self.enforce_iam = enforce_iam
        self.kms_decrypt_allowed = kms_decrypt_allowed
        self.child_environment = dict(child_environment or {})
        self.region = region
        self.account_id = account_id
        self.workdir = Path(workdir)
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._pool: WarmPool | None = None
        self._background: set[threading.Thread] = set()
        self._background_lock = threading.Lock()
        # A weighted alias's draw per invocation: traffic shaping, not secrecy.
        self._routing = random.Random()  # noqa: S311

    @property
    def endpoint(self) -> str:
        """The value for AWS_ENDPOINT_URL_LAMBDA (known once started)."""
        if self._server is None:
            raise RuntimeError("the Lambda front is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LambdaFront:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._server = LoopbackHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # Code running inside a function reaches moto, and this front for Lambda calls.
        endpoints = {
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "AWS_ENDPOINT_URL_LAMBDA": self.endpoint,
        }
        context = CloudContext(endpoints=endpoints, extra=self.child_environment)
        self._pool = WarmPool(self.workdir, context)
        self._thread = threading.Thread(
            # shutdown() waits up to one poll interval: 0.5 s by default, on every stop.
            target=self._server.serve_forever,
            args=(0.05,),
            name="lambda-front",
            daemon=True,
        )
        self._thread.start()
        logger.info("Lambda front listening on %s (moto at %s)", self.endpoint, self.moto_endpoint)
        return self

    def stop(self) -> None:
        """Stops serving, then kills every runtime process; files stay in workdir."""
        if self._server is not None:
            if self._thread is not None and self._thread.is_alive():
                self._server.shutdown()
            self._server.server_close()
        if self._pool is not None:
            self._pool.close()
        with self._background_lock:
            background = list(self._background)
        for thread in background:
            thread.join(timeout=10)

    def invoke(
        self, function: str, payload: bytes, invocation_type: str = "RequestResponse"
    ) -> InvokeResult:
        """Lambda's Invoke; raises FunctionNotFoundError, or LambdaApiError for a bad request."""
        return self._invoke_detailed(function, payload, invocation_type).result

    def _invoke_detailed(
        self,
        function: str,
        payload: bytes,
        invocation_type: str = "RequestResponse",
        qualifier: str | None = None,
        client_context: str | None = None,
    ) -> _Answer:
        ref = parse_function_ref(function, self.region, self.account_id, qualifier)
        spec = load_function(resolve_qualifier(ref, self._routing), invoked_arn=ref.arn)
        event = _event(payload, invocation_type)
        request_id = new_request_id()
        if invocation_type == "DryRun":
            return _Answer(InvokeResult(204, b""), request_id, spec.version)
        invocation = Invocation(
            request_id=request_id,
            payload=event,
            invoked_arn=spec.invoked_arn,
            timeout=spec.timeout,
            trace_id=new_trace_id(),
            client_context=client_context,
        )
        if invocation_type == "Event":
            self._run_in_background(spec, invocation)
            return _Answer(InvokeResult(202, b""), request_id, spec.version)
        outcome = self._run(spec, invocation)
        function_error = "Unhandled" if outcome.failed else None
        result = InvokeResult(200, outcome.body, function_error)
        return _Answer(result, request_id, spec.version)

    def logs(self, function_name: str) -> list[str]:
        """The latest output lines (stdout and stderr) of the function's runtimes."""
        return self._pool.logs(function_name) if self._pool else []

    def runtime_pids(self) -> list[int]:
        """Process ids of the runtimes currently running (for checks that none outlive stop)."""
        return self._pool.pids() if self._pool else []

    def _run(self, spec: FunctionSpec, invocation: Invocation) -> Outcome:
        if self._pool is None:
            raise RuntimeError("the Lambda front is not started")
        try:
            environment = self._pool.acquire(spec)
        except PoolClosedError as error:
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            raise LambdaApiError(status, "ServiceException", str(error)) from error
        try:
            return environment.run(invocation)
        finally:
            self._pool.release(environment)

    def _run_in_background(self, spec: FunctionSpec, invocation: Invocation) -> None:
        def run() -> None:
            try:
                outcome = self._run(spec, invocation)
            except LambdaApiError as error:
                logger.warning("%s: Event invocation not run: %s", spec.name, error.message)
            except Exception:
                logger.exception("%s: Event invocation not run", spec.name)
            else:
                if outcome.failed:
                    body = outcome.body.decode("utf-8", "replace")
                    logger.warning("%s: Event invocation failed: %s", spec.name, body)
            finally:
                with self._background_lock:
                    self._background.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"event-{invocation.request_id}", daemon=True)
        with self._background_lock:
            self._background.add(thread)
        thread.start()


def _event(payload: bytes, invocation_type: str) -> bytes:
    if invocation_type not in ("RequestResponse", "Event", "DryRun"):
        raise LambdaApiError(
            HTTPStatus.BAD_REQUEST,
            "InvalidParameterValueException",
            f"Unsupported invocation type: {invocation_type}",
        )
    if invocation_type == "RequestResponse" and len(payload) > MAX_SYNC_PAYLOAD:
        raise LambdaApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "RequestTooLargeException",
            f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes"
            " for the InvokeFunction operation",
        )
    if not payload.strip():
        return b"{}"  # Lambda hands an empty payload to the handler as an empty object
    try:
        json.loads(payload)
    except ValueError as error:
        raise LambdaApiError(
            HTTPStatus.BAD_REQUEST,
            "InvalidRequestContentException",
            f"Could not parse request body into json: Could not parse payload into json: {error}",
        ) from error
    return payload


def _handler_for(front: LambdaFront) -> type[BaseHTTPRequestHandler]:
    moto = urlsplit(front.moto_endpoint)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # boto3 keeps its connections open
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("front: " + format, *args)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            for pattern, handle in (
                (_INVOKE, self._invoke),
                (_INVOKE_ASYNC, self._invoke_async),
                (_STREAM, self._refuse_stream),
            ):
                match = pattern.match(url.path)
                if match:
                    body = self._read_body()
                    try:
                        if front.enforce_iam:
                            _authorize_invoke(self, url, body, front)
                        handle(unquote(match["function"]), body, parse_qs(url.query))
                    except FunctionNotFoundError as error:
                        message = f"Function not found: {error.arn}"
                        self._error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", message)
                    except LambdaApiError as error:
                        self._error(error.status, error.error_type, error.message)
                    except Exception as error:  # a bug here must not cost the caller its answer
                        logger.exception("front: %s %s failed", self.command, self.path)
                        status = HTTPStatus.INTERNAL_SERVER_ERROR
                        self._error(status, "ServiceException", f"{type(error).__name__}: {error}")
                    return
            self._proxy()

        def _invoke(self, function: str, body: bytes, query: dict[str, list[str]]) -> None:
            answer = front._invoke_detailed(
                function,
                body,
                self.headers.get("X-Amz-Invocation-Type") or "RequestResponse",
                qualifier=(query.get("Qualifier") or [None])[0],
                client_context=_client_context(self.headers.get("X-Amz-Client-Context")),
            )
            result = answer.result
            headers = {"X-Amzn-RequestId": answer.request_id}
            if result.status_code == HTTPStatus.OK:
                headers["Content-Type"] = "application/json"
                headers["X-Amz-Executed-Version"] = answer.version
            if result.function_error:
                headers["X-Amz-Function-Error"] = result.function_error
            self._send(result.status_code, result.payload, headers)

        def _invoke_async(self, function: str, body: bytes, query: dict[str, list[str]]) -> None:
            answer = front._invoke_detailed(function, body, "Event")
            headers = {"X-Amzn-RequestId": answer.request_id, "Content-Type": "application/json"}
            self._send(HTTPStatus.ACCEPTED, b'{"Status": 202}', headers)

        def _refuse_stream(self, function: str, body: bytes, query: dict[str, list[str]]) -> None:
            message = "InvokeWithResponseStream is not served by the offline Lambda front"
            raise LambdaApiError(HTTPStatus.BAD_REQUEST, "InvalidParameterValueException", message)

        def _proxy(self) -> None:
            """Forwards the request to moto and relays its answer; only variables under a
            customer managed key are hidden from a caller who may not decrypt them."""
            url = urlsplit(self.path)
            body = self._read_body()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            connection = http.client.HTTPConnection(moto.hostname, moto.port, timeout=120)
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                content = response.read()
                reply_headers = [
                    (k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                ]
                status = response.status
                # A HEAD answer announces a length it does not send; keep moto's figure.
                length = response.getheader("Content-Length") or "0"
            except OSError as error:
                logger.warning(
                    "front: moto did not answer %s %s: %s", self.command, self.path, error
                )
                self._error(
                    HTTPStatus.BAD_GATEWAY, "ServiceException", f"moto unreachable: {error}"
                )
                return
            finally:
                connection.close()
            if status == HTTPStatus.OK and self.command == "PUT":
                region, account = front.region, front.account_id
                content = apply_key_update(url.path, body, content, account, region)
            if self.command == "GET" and status == HTTPStatus.OK and shows_configurations(url.path):
                content = rewrite_answer(url.path, content, self._decrypter(url, body))
            self.send_response(status)
            for name, value in reply_headers:
                self.send_header(name, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", length)
                self.end_headers()
                return
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _decrypter(self, url: SplitResult, body: bytes) -> Decrypter:
            if not front.enforce_iam:
                return setting_decrypter(front.kms_decrypt_allowed)
            from plldb.local.gateway.sigv4 import SignedRequest

            headers = tuple(self.headers.items())
            return caller_decrypter(SignedRequest(self.command, url.path, url.query, headers, body))

        do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _proxy

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _error(self, status: int, error_type: str, message: str) -> None:
            body = json.dumps({"Type": "User", "message": message}).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Amzn-ErrorType": error_type,
                "X-Amzn-RequestId": new_request_id(),
            }
            self._send(status, body, headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

    return Handler


def _authorize_invoke(
    handler: BaseHTTPRequestHandler, url: SplitResult, body: bytes, front: LambdaFront
) -> None:
    """lambda:InvokeFunction for the signer of this request, checked as moto checks the rest."""
    from plldb.local.gateway.sigv4 import SignedRequest
    from plldb.local.iam.enforcer import Refusal, authenticate, authorize, requirements
    from plldb.local.iam.requests import Scope

    headers = tuple(handler.headers.items())
    request = SignedRequest(handler.command, url.path, url.query, headers, body)
    try:
        allowed = authenticate(request)
        scope = Scope(front.region, allowed.identity.account_id)
        authorize(allowed, requirements(allowed, request, scope))
    except Refusal as refusal:
        error_type = {
            "denied": "AccessDeniedException",
            "signature": "InvalidSignatureException",
        }.get(refusal.kind, "UnrecognizedClientException")
        raise LambdaApiError(HTTPStatus.FORBIDDEN, error_type, refusal.message) from None


def _client_context(header: str | None) -> str | None:
    """X-Amz-Client-Context arrives base64-encoded; the runtime gets the JSON itself."""
    if not header:
        return None
    try:
        return base64.b64decode(header, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
