"""The WebSocket messages, from the one module the Lambda functions also use (_protocol.py)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from plldb.resources import cloudformation_dir


def _load() -> ModuleType:
    name = "plldb._lambda_protocol"
    if name not in sys.modules:
        path = cloudformation_dir() / "lambda_functions" / "_protocol.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_protocol = _load()
MAX_MESSAGE_BYTES: int = _protocol.MAX_MESSAGE_BYTES
MAX_CLIENT_FRAME_BYTES: int = _protocol.MAX_CLIENT_FRAME_BYTES
REQUEST: str = _protocol.REQUEST
RESPONSE: str = _protocol.RESPONSE
ERROR: str = _protocol.ERROR
PART: str = _protocol.PART
ProtocolError: type[ValueError] = _protocol.ProtocolError
Reassembler = _protocol.Reassembler
parse = _protocol.parse
validate = _protocol.validate
encode = _protocol.encode
frames = _protocol.frames
join = _protocol.join
info = _protocol.info
error = _protocol.error
keepalive = _protocol.keepalive
session_closed = _protocol.session_closed
request = _protocol.request
response = _protocol.response
invocation_error = _protocol.invocation_error
is_invocation_error = _protocol.is_invocation_error
lambda_error = _protocol.lambda_error
