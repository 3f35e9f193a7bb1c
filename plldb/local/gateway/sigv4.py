"""Checking a request's SigV4 signature, as API Gateway does for AWS_IAM methods."""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = datetime.timedelta(minutes=5)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_UNSIGNED_PAYLOADS = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")

# x-amzn-ErrorType values of API Gateway's 403s
MISSING_TOKEN = "MissingAuthenticationTokenException"  # noqa: S105
INCOMPLETE = "IncompleteSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"
INVALID = "InvalidSignatureException"

_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request exactly as it arrived: what the client signed."""

    method: str
    path: str  # as sent, still percent-encoded, without the query string
    query: str  # the raw query string, without "?"
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: the caller's access key, or API Gateway's 403 error."""

    access_key: str | None = None
    error_type: str | None = None  # the x-amzn-ErrorType header of the 403
    message: str | None = None  # the "message" of the 403's JSON body

    @property
    def ok(self) -> bool:
        return self.error_type is None


@dataclass(frozen=True)
class _Authorization:
    access_key: str
    scope_date: str
    scope_region: str
    scope_service: str
    signed_headers: tuple[str, ...]
    signature: str


def is_signed(request: SignedRequest) -> bool:
    """Whether the request carries any signature at all (else API Gateway says "Missing ...")."""
    return request.header("Authorization") is not None


def verify(
    request: SignedRequest,
    credentials: Mapping[str, str],
    region: str,
    service: str = "execute-api",
    now: datetime.datetime | None = None,
) -> Verdict:
    """Check a header-signed request against known credentials (access key id -> secret key)."""
    header = request.header("Authorization")
    if header is None:
        return Verdict(error_type=MISSING_TOKEN, message="Missing Authentication Token")
    authorization = _parse_authorization(header)
    if authorization is None:
        return Verdict(
            error_type=INCOMPLETE,
            message=(
                "Authorization header requires 'Credential' parameter. Authorization header "
                "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
                f"parameter. Authorization={header}"
            ),
        )
    secret = credentials.get(authorization.access_key)
    if secret is None:
        return Verdict(
            error_type=UNRECOGNIZED,
            message="The security token included in the request is invalid.",
        )
    timestamp = _request_timestamp(request)
    if timestamp is None:
        return Verdict(
            error_type=INCOMPLETE,
            message=(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header."
            ),
        )
    stale = _skew_error(timestamp, now or datetime.datetime.now(datetime.timezone.utc))
    if stale:
        return Verdict(error_type=INVALID, message=stale)
    scope_error = _scope_error(authorization, timestamp, region, service)
    if scope_error:
        return Verdict(error_type=INVALID, message=scope_error)
    if not _body_matches_hash(request):
        return Verdict(error_type=INVALID, message=_MISMATCH)
    # The query is canonicalized the SigV4 way (decoded, then re-encoded), and also as sent:
    # botocore signs a query it did not encode itself as it stands (a "+" stays a "+").
    attempts = [
        _signature(request, authorization, secret, timestamp, region, service, reencode)
        for reencode in ((True, False) if request.query else (True,))
    ]
    if not any(hmac.compare_digest(got, authorization.signature) for got, _, _ in attempts):
        _, canonical, string_to_sign = attempts[0]
        return Verdict(
            error_type=INVALID,
            message=(
                f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n"
                f"'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
            ),
        )
    return Verdict(access_key=authorization.access_key)


def _body_matches_hash(request: SignedRequest) -> bool:
    # The hash header stands for the body in the signature, so it must be the body's hash.
    content_hash = request.header("x-amz-content-sha256")
    if content_hash is None or content_hash in _UNSIGNED_PAYLOADS:
        return True
    return hmac.compare_digest(content_hash, hashlib.sha256(request.body).hexdigest())


def _parse_authorization(header: str) -> _Authorization | None:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    credential = fields.get("Credential", "").split("/")
    signed = fields.get("SignedHeaders")
    signature = fields.get("Signature")
    if len(credential) != 5 or credential[4] != "aws4_request" or not signed or not signature:
        return None
    return _Authorization(
        access_key=credential[0],
        scope_date=credential[1],
        scope_region=credential[2],
        scope_service=credential[3],
        signed_headers=tuple(name.strip().lower() for name in signed.split(";")),
        signature=signature,
    )


def _request_timestamp(request: SignedRequest) -> str | None:
    """The signing time as "YYYYMMDDTHHMMSSZ", from X-Amz-Date or else the Date header."""
    amz_date = request.header("X-Amz-Date")
    if amz_date is not None:
        return amz_date if re.fullmatch(r"\d{8}T\d{6}Z", amz_date) else None
    date = request.header("Date")
    if date is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc).strftime(_AMZ_DATE)


def _skew_error(timestamp: str, now: datetime.datetime) -> str | None:
    signed_at = datetime.datetime.strptime(timestamp, _AMZ_DATE).replace(
        tzinfo=datetime.timezone.utc
    )
    current = now.astimezone(datetime.timezone.utc)
    if signed_at < current - MAX_SKEW:
        return (
            f"Signature expired: {timestamp} is now earlier than "
            f"{(current - MAX_SKEW).strftime(_AMZ_DATE)} ({current.strftime(_AMZ_DATE)} - 5 min.)"
        )
    if signed_at > current + MAX_SKEW:
        return (
            f"Signature not yet current: {timestamp} is still later than "
            f"{(current + MAX_SKEW).strftime(_AMZ_DATE)} ({current.strftime(_AMZ_DATE)} + 5 min.)"
        )
    return None


def _scope_error(
    authorization: _Authorization, timestamp: str, region: str, service: str
) -> str | None:
    if authorization.scope_date != timestamp[:8]:
        return (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            f"HTTP: '{authorization.scope_date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    if authorization.scope_region != region:
        return "Credential should be scoped to a valid region. "
    if authorization.scope_service != service:
        return f"Credential should be scoped to correct service: '{service}'. "
    return None


class _ClientHeaders(SigV4Auth):
    """botocore's signer restricted to the headers the client says it signed.

    botocore would otherwise pick its own set (it never signs User-Agent, for example), and the
    canonical request must list exactly what the client listed.
    """

    def __init__(self, credentials: Credentials, service: str, region: str, names: tuple[str, ...]):
        super().__init__(credentials, service, region)
        self._names = frozenset(names)

    def _normalize_url_path(self, path: str) -> str:
        # S3 signs the path as sent; every other service signs it normalized and re-encoded.
        return path if self._service_name == "s3" else super()._normalize_url_path(path)

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._names:
                chosen[name.lower()] = value
        return chosen


def _signature(
    request: SignedRequest,
    authorization: _Authorization,
    secret: str,
    timestamp: str,
    region: str,
    service: str,
    reencode_query: bool,
) -> tuple[str, str, str]:
    """The signature botocore computes for the request; with the canonical request and STS."""
    host = request.header("Host") or ""
    url = f"http://{host}{request.path}"
    if reencode_query:
        params = parse_qsl(request.query, keep_blank_values=True)
    else:
        url, params = f"{url}?{request.query}", []
    rebuilt = AWSRequest(method=request.method.upper(), url=url, data=request.body, params=params)
    for name, value in request.headers:
        if name.lower() in authorization.signed_headers:
            rebuilt.headers[name] = value
    rebuilt.context["timestamp"] = timestamp
    signer = _ClientHeaders(
        Credentials(authorization.access_key, secret), service, region, authorization.signed_headers
    )
    canonical = signer.canonical_request(rebuilt)
    string_to_sign = signer.string_to_sign(rebuilt, canonical)
    return signer.signature(string_to_sign, rebuilt), canonical, string_to_sign
