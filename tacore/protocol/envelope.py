"""The client-facing envelope: one JSON frame in, one JSON frame out. Bytes in, objects out, no sockets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from tacore.errors import RETRYABLE_CODES, ErrorCode, InvalidRequest

MIN_PRIORITY = 0  # highest
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 5
MAX_REQUEST_ID_LENGTH = 256
#: Longer method names are INVALID_REQUEST: no method is named that long, and a name is kept per request in the
#: request log (and, for a served method, in the statistics).
MAX_METHOD_LENGTH = 128

_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass(slots=True)
class Request:
    """A decoded request. ``raw`` keeps the original frame so the broker forwards it without re-encoding."""

    request_id: str | None
    method: str
    params: dict[str, Any]
    priority: int
    timeout_ms: float | None
    raw: bytes
    internal: bool  # the service's own traffic (``"internal": true``): counted apart from user requests


def decode_request(frame: bytes, max_bytes: int) -> Request:
    """Decode and validate one request frame; raises InvalidRequest with the request_id when readable."""
    if len(frame) > max_bytes:
        raise InvalidRequest(f"request frame is {len(frame)} bytes, over the {max_bytes} byte limit",
                             details={"limit_bytes": max_bytes, "size_bytes": len(frame)})
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request is not valid JSON: {exc}") from None
    if type(obj) is not dict:
        raise InvalidRequest(f"request must be a JSON object, not {_json_type(obj)}")

    request_id = obj.get("request_id")
    if request_id is not None and (type(request_id) is not str or not request_id
                                   or len(request_id) > MAX_REQUEST_ID_LENGTH):
        raise InvalidRequest(
            f"request_id must be a non-empty string of at most {MAX_REQUEST_ID_LENGTH} characters",
            details={"field": "request_id"},
        )
    method = obj.get("method")
    if type(method) is not str or not method or len(method) > MAX_METHOD_LENGTH:
        raise InvalidRequest(_method_problem(method), request_id=request_id, details={"field": "method"})
    params = obj.get("params")
    if params is None:
        params = {}
    elif type(params) is not dict:
        raise InvalidRequest(f"params must be a JSON object, not {_json_type(params)}",
                             request_id=request_id, details={"field": "params"})
    priority = obj.get("priority", DEFAULT_PRIORITY)
    if priority is None:
        priority = DEFAULT_PRIORITY
    elif type(priority) is not int or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidRequest(f"priority must be an integer from {MIN_PRIORITY} (highest) to {MAX_PRIORITY}",
                             request_id=request_id, details={"field": "priority"})
    timeout_ms = obj.get("timeout_ms")
    if timeout_ms is not None and (type(timeout_ms) not in (int, float) or not timeout_ms > 0):
        raise InvalidRequest("timeout_ms must be a positive number of milliseconds",
                             request_id=request_id, details={"field": "timeout_ms"})
    internal = obj.get("internal", False)
    if type(internal) is not bool:
        raise InvalidRequest("internal must be true or false", request_id=request_id, details={"field": "internal"})
    return Request(request_id, method, params, priority, timeout_ms, frame, internal)


def encode_reply(request_id: str | None, data: Any, processing_time_ms: float) -> bytes:
    """A success reply."""
    return orjson.dumps(
        {
            "status": "success",
            "request_id": request_id,
            "data": data,
            "error": None,
            "processing_time_ms": round(processing_time_ms, 3),
            "timestamp": round(time.time(), 3),
        },
        option=_DUMPS_OPTIONS,
    )


def error_body(code: ErrorCode, message: str, details: Any = None, retryable: bool | None = None) -> dict[str, Any]:
    """``retryable`` defaults to the code's (``RETRYABLE_CODES``); a caller that knows better says so."""
    return {"code": str(code), "message": message,
            "retryable": code in RETRYABLE_CODES if retryable is None else retryable, "details": details}


def encode_error(request_id: str | None, code: ErrorCode, message: str, details: Any = None,
                 processing_time_ms: float = 0.0, retryable: bool | None = None) -> bytes:
    """An error reply; ``error`` is ``{"code", "message", "retryable", "details"}``."""
    return orjson.dumps(
        {
            "status": "error",
            "request_id": request_id,
            "data": None,
            "error": error_body(code, message, details, retryable),
            "processing_time_ms": round(processing_time_ms, 3),
            "timestamp": round(time.time(), 3),
        },
        option=_DUMPS_OPTIONS,
    )


def _method_problem(method: Any) -> str:
    if method is None:
        return "method is missing"
    if type(method) is str and method:
        return f"method is {len(method)} characters long, over the {MAX_METHOD_LENGTH} character limit"
    return "method must be a non-empty string"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"
