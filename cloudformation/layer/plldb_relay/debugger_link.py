"""The relay's cloud side: is a debugger listening, hand it the invocation, wait for the answer.

Credentials: the function's own role assumes PLLDBDebuggerRole, whose policy reaches only the
plldb tables and the WebSocket API's @connections. Nothing here logs or stores credentials,
and the request item in PLLDBDebugger holds no event, only what routes the answer back.
Standalone: standard library and boto3 (imported lazily, it is the slowest import).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import _protocol
from runtime_proxy import Answer, Invocation

logger = logging.getLogger("plldb.relay")

ACTIVE, PENDING, ANSWERED = "ACTIVE", "PENDING", "ANSWERED"
FIRST_POLL_SECONDS = 0.005  # the answer of a quick handler arrives within tens of milliseconds
POLL_GROWTH = 1.5
MAX_POLL_SECONDS = 0.25  # while the developer sits on a breakpoint
SESSION_CHECK_SECONDS = 2.0  # how often a long wait looks whether the debugger went away
DEADLINE_MARGIN_SECONDS = 0.3  # leave time to report the missing answer before Lambda's timeout
REQUEST_TTL_SECONDS = 900  # beyond any invocation's deadline; DynamoDB removes what is left
ROLE_SESSION_SECONDS = 3600
ROLE_REFRESH_SECONDS = 300
NO_ANSWER = "plldb.NoAnswer"
# IAM is eventually consistent: right after the instrumentation attaches PLLDBRelayPolicy to the
# function's role, AssumeRole may be denied for seconds. Denials are retried for at most this
# share of the invocation's remaining time, so the function's own handler can still run after.
ASSUME_RETRY_SHARE = 0.5
ASSUME_FIRST_RETRY_SECONDS = 0.1
ASSUME_MAX_RETRY_SECONDS = 1.0
_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})

# Never sent to the debugger: credentials, the sandbox's own paths and plumbing, plldb's settings.
_SECRET_VARIABLES = frozenset(
    {
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SECRET_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    }
)
_SANDBOX_VARIABLES = frozenset(
    {
        "_HANDLER",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_EXEC_WRAPPER",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "PATH",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "LANG",
        "TZ",
        "HOME",
        "PWD",
        "SHLVL",
        "OLDPWD",
    }
)
_SANDBOX_PREFIXES = (
    "PLLDB_",
    "_X_AMZN",
    "AWS_XRAY_",
    "AWS_CONTAINER_",
    "AWS_ENDPOINT_URL",
    "AWS_LAMBDA_RUNTIME",
)


def function_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a local run of the handler should see: the function's own and Lambda's
    descriptive ones (region, name, memory), never credentials or the sandbox's paths."""
    return {
        name: value
        for name, value in environ.items()
        if name not in _SECRET_VARIABLES
        and name not in _SANDBOX_VARIABLES
        and not name.startswith(_SANDBOX_PREFIXES)
    }


@dataclass(frozen=True)
class Settings:
    """What instrumentation put in the function's environment for the relay."""

    session_id: str
    sessions_table: str
    debugger_table: str
    callback_url: str
    role_arn: str
    function_name: str
    environment: tuple[tuple[str, str], ...]
    # The function role's own keys: sent only to a debugger that asked (attach --function-role).
    credentials: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            session_id=environ.get("PLLDB_SESSION_ID", ""),
            sessions_table=environ.get("PLLDB_SESSIONS_TABLE", ""),
            debugger_table=environ.get("PLLDB_DEBUGGER_TABLE", ""),
            callback_url=environ.get("PLLDB_CALLBACK_URL", ""),
            role_arn=environ.get("PLLDB_DEBUGGER_ROLE_ARN", ""),
            function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            environment=tuple(sorted(function_environment(environ).items())),
            credentials={
                name: environ[name]
                for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
                if environ.get(name)
            },
        )

    @property
    def complete(self) -> bool:
        return all((self.session_id, self.sessions_table, self.debugger_table, self.callback_url))


class Clients:
    """DynamoDB and @connections clients on the debugger role's credentials, renewed in time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._expires = 0.0
        self.dynamodb: Any = None
        self.connections: Any = None

    def get(self) -> Clients:
        with self._lock:
            if time.time() > self._expires - ROLE_REFRESH_SECONDS:
                self._build()
        return self

    def _build(self) -> None:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3})
        session = boto3.Session()
        expires = time.time() + ROLE_SESSION_SECONDS
        if self.settings.role_arn:
            role = session.client("sts", config=config).assume_role(
                RoleArn=self.settings.role_arn,
                RoleSessionName=f"plldb-relay-{self.settings.function_name}"[:64],
                DurationSeconds=ROLE_SESSION_SECONDS,
            )["Credentials"]
            session = boto3.Session(
                aws_access_key_id=role["AccessKeyId"],
                aws_secret_access_key=role["SecretAccessKey"],
                aws_session_token=role["SessionToken"],
                region_name=session.region_name,
            )
            expiration = role.get("Expiration")
            if hasattr(expiration, "timestamp"):
                expires = expiration.timestamp()
        self.dynamodb = session.client("dynamodb", config=config)
        self.connections = session.client(
            "apigatewaymanagementapi", endpoint_url=self.settings.callback_url, config=config
        )
        self._expires = expires


class DebuggerLink:
    """Relays invocations to the session's debugger while it is live; declines otherwise."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        clients: Clients | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self._clients = clients or Clients(settings)

    def warm_up(self) -> None:
        """Load boto3 and the role's credentials ahead of the first invocation."""
        if not self.settings.complete:
            return
        try:
            self._clients.get()
        except Exception as error:  # the first invocation will meet it again and decline
            logger.warning("plldb relay: warming up failed: %s", _describe(error))

    def relay(self, invocation: Invocation) -> Answer | None:
        """The debugger's answer, or None when the function's own handler should run."""
        if not self.settings.complete:
            return None
        try:
            event = json.loads(invocation.body or b"null")
        except ValueError:
            logger.info("plldb relay: the event is not JSON; running the function's own handler")
            return None
        try:
            clients = self._clients_in_time(invocation)
            session = self._live_session(clients)
            if session is None:
                logger.info("plldb relay: no debugger attached; running the function's own handler")
                return None
            return self._relay(clients, session, invocation, event)
        except Exception as error:
            logger.warning("plldb relay: %s; running the function's own handler", _describe(error))
            return None

    def _clients_in_time(self, invocation: Invocation) -> Clients:
        """The debugger role's clients, retrying AccessDenied (IAM propagating) within budget."""
        budget = invocation.deadline_ms / 1000 - DEADLINE_MARGIN_SECONDS - self.clock()
        give_up = self.clock() + max(0.0, budget) * ASSUME_RETRY_SHARE
        delay = ASSUME_FIRST_RETRY_SECONDS
        while True:
            try:
                return self._clients.get()
            except Exception as error:
                if _error_code(error) not in _DENIED or self.clock() + delay > give_up:
                    raise
                logger.info(
                    "plldb relay: the debugger role is not assumable yet (%s), as when IAM is "
                    "still applying a new policy; retrying in %.1f s",
                    _describe(error),
                    delay,
                )
                self.sleep(delay)
                delay = min(delay * 2, ASSUME_MAX_RETRY_SECONDS)

    # ------------------------------------------------------------------ the session

    def _live_session(self, clients: Clients) -> dict[str, Any] | None:
        answer = clients.dynamodb.get_item(
            TableName=self.settings.sessions_table,
            Key={"SessionId": {"S": self.settings.session_id}},
            ConsistentRead=True,
            ProjectionExpression="#s, #ttl, ConnectionId, FunctionRole, LeaseUntil",
            ExpressionAttributeNames={"#s": "Status", "#ttl": "TTL"},
        )
        item = answer.get("Item") or {}
        status = item.get("Status", {}).get("S")
        connection_id = item.get("ConnectionId", {}).get("S")
        expires = int(item.get("TTL", {}).get("N", "0"))
        now = self.clock()
        if status != ACTIVE or not connection_id or expires <= now:
            return None
        # A lease that ran out means no heartbeat came: the CLI is gone even if the sweeper has
        # not closed the session yet, so run the function's own handler at once.
        lease = item.get("LeaseUntil", {}).get("N")
        if lease is not None and int(lease) <= now:
            return None
        return {
            "ConnectionId": connection_id,
            "FunctionRole": item.get("FunctionRole", {}).get("N") == "1",
        }

    # ------------------------------------------------------------------ one invocation

    def _relay(
        self, clients: Clients, session: dict[str, Any], invocation: Invocation, event: Any
    ) -> Answer | None:
        request_id = invocation.request_id
        self._store_request(clients, invocation)
        message = _protocol.request(
            request_id,
            self.settings.function_name,
            event,
            invocation.deadline_ms,
            environment=dict(self.settings.environment),
            context=_context(invocation, dict(self.settings.environment)),
            credentials=self.settings.credentials if session["FunctionRole"] else None,
        )
        try:
            for frame in _protocol.frames(message):
                clients.connections.post_to_connection(
                    ConnectionId=session["ConnectionId"], Data=frame.encode("ascii")
                )
        except Exception as error:
            self._forget(clients, request_id, 0)
            if _error_code(error) == "GoneException":
                logger.info("plldb relay: the debugger is gone; running the function's own handler")
                return None
            raise
        logger.info("plldb relay: invocation %s sent to the debugger", request_id)
        answer, parts = self._await_answer(clients, invocation)
        self._forget(clients, request_id, parts)
        return answer

    def _store_request(self, clients: Clients, invocation: Invocation) -> None:
        clients.dynamodb.put_item(
            TableName=self.settings.debugger_table,
            Item={
                "RequestId": {"S": invocation.request_id},
                "SessionId": {"S": self.settings.session_id},
                "FunctionName": {"S": self.settings.function_name},
                "Status": {"S": PENDING},
                "DeadlineMs": {"N": str(invocation.deadline_ms)},
                "TTL": {"N": str(int(self.clock()) + REQUEST_TTL_SECONDS)},
            },
            ConditionExpression="attribute_not_exists(RequestId)",
        )

    def _await_answer(self, clients: Clients, invocation: Invocation) -> tuple[Answer | None, int]:
        """(answer, parts to clean up); answer None when the debugger left without answering."""
        delay = FIRST_POLL_SECONDS
        deadline = invocation.deadline_ms / 1000 - DEADLINE_MARGIN_SECONDS
        next_session_check = self.clock() + SESSION_CHECK_SECONDS
        while True:
            item = (
                clients.dynamodb.get_item(
                    TableName=self.settings.debugger_table,
                    Key={"RequestId": {"S": invocation.request_id}},
                    ConsistentRead=True,
                ).get("Item")
                or {}
            )
            if item.get("Status", {}).get("S") == ANSWERED:
                parts = int(item.get("PartCount", {}).get("N", "0"))
                return self._read_answer(clients, invocation.request_id, item, parts), parts
            now = self.clock()
            if now >= deadline:
                return _no_answer(invocation.request_id), 0
            if now >= next_session_check:
                if self._live_session(clients) is None:
                    logger.info(
                        "plldb relay: the debugger left before answering; "
                        "running the function's own handler"
                    )
                    return None, 0
                next_session_check = now + SESSION_CHECK_SECONDS
            self.sleep(max(0.0, min(delay, deadline - now)))
            delay = min(delay * POLL_GROWTH, MAX_POLL_SECONDS)

    def _read_answer(
        self, clients: Clients, request_id: str, item: dict[str, Any], parts: int
    ) -> Answer:
        if parts:
            pieces = []
            for index in range(parts):
                part = clients.dynamodb.get_item(
                    TableName=self.settings.debugger_table,
                    Key={"RequestId": {"S": part_key(request_id, index)}},
                    ConsistentRead=True,
                )["Item"]
                pieces.append(_protocol.parse(part["Part"]["S"]))
            message = _protocol.join(pieces)
        else:
            message = _protocol.parse(item["Answer"]["S"])
        if message["type"] == _protocol.RESPONSE:
            return Answer(json.dumps(message["payload"]).encode("utf-8"))
        body = json.dumps(_protocol.lambda_error(message)).encode("utf-8")
        return Answer(body, error_type=message["errorType"])

    def _forget(self, clients: Clients, request_id: str, parts: int) -> None:
        """Remove the request and its parts now; their TTL covers a failure here."""
        keys = [request_id, *(part_key(request_id, index) for index in range(parts))]
        for key in keys:
            try:
                clients.dynamodb.delete_item(
                    TableName=self.settings.debugger_table, Key={"RequestId": {"S": key}}
                )
            except Exception as error:
                logger.info("plldb relay: cleaning up %s failed: %s", key, _describe(error))


def part_key(request_id: str, index: int) -> str:
    """The PLLDBDebugger key of one part of a request's answer (see websocket_default)."""
    return f"{request_id}#{index}"


# Context fields Lambda's runtime reads from its environment: key in `context` -> variable.
_CONTEXT_VARIABLES = {
    "functionVersion": "AWS_LAMBDA_FUNCTION_VERSION",
    "memoryLimitInMB": "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "logGroupName": "AWS_LAMBDA_LOG_GROUP_NAME",
    "logStreamName": "AWS_LAMBDA_LOG_STREAM_NAME",
}


def _context(invocation: Invocation, environment: Mapping[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {"invokedFunctionArn": invocation.invoked_function_arn}
    for key, variable in _CONTEXT_VARIABLES.items():
        if environment.get(variable):
            context[key] = environment[variable]
    for header, key in (
        ("Lambda-Runtime-Client-Context", "clientContext"),
        ("Lambda-Runtime-Cognito-Identity", "identity"),
    ):
        raw = invocation.header(header)
        if raw:
            try:
                context[key] = json.loads(raw)
            except ValueError:
                logger.info("plldb relay: ignored a %s header that is not JSON", header)
    return context


def _no_answer(request_id: str) -> Answer:
    message = _protocol.invocation_error(
        request_id,
        NO_ANSWER,
        "plldb: the debugger did not answer before the invocation's deadline",
    )
    return Answer(json.dumps(_protocol.lambda_error(message)).encode(), error_type=NO_ANSWER)


def _error_code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _describe(error: BaseException) -> str:
    code = _error_code(error)
    return f"{code} ({type(error).__name__})" if code else type(error).__name__
