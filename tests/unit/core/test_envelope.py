from __future__ import annotations

import orjson
import pytest

from tacore.errors import ErrorCode, InvalidRequest
from tacore.protocol.envelope import (
    DEFAULT_PRIORITY,
    MAX_METHOD_LENGTH,
    decode_request,
    encode_error,
    encode_reply,
)

LIMIT = 1024


def test_valid_request_is_decoded_with_defaults() -> None:
    request = decode_request(b'{"request_id": "r1", "method": "health.check"}', LIMIT)
    assert (request.request_id, request.method, request.params) == ("r1", "health.check", {})
    assert request.priority == DEFAULT_PRIORITY
    assert request.timeout_ms is None


def test_priority_and_timeout_are_read() -> None:
    request = decode_request(b'{"method": "m", "params": {"a": 1}, "priority": 0, "timeout_ms": 250}', LIMIT)
    assert request.priority == 0 and request.timeout_ms == 250 and request.params == {"a": 1}


@pytest.mark.parametrize(
    ("frame", "request_id"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'"text"', None),
        (b'{"request_id": "r2"}', "r2"),
        (b'{"request_id": "r3", "method": ""}', "r3"),
        (b'{"request_id": "r4", "method": 5}', "r4"),
        (b'{"request_id": "r5", "method": "m", "params": [1]}', "r5"),
        (b'{"request_id": "r6", "method": "m", "priority": 10}', "r6"),
        (b'{"request_id": "r7", "method": "m", "priority": "high"}', "r7"),
        (b'{"request_id": "r8", "method": "m", "priority": true}', "r8"),
        (b'{"request_id": "r9", "method": "m", "timeout_ms": -1}', "r9"),
        (b'{"request_id": 12, "method": "m"}', None),
    ],
)
def test_malformed_request_is_invalid_request_with_readable_request_id(frame: bytes, request_id: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_request(frame, LIMIT)
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert info.value.request_id == request_id


def test_oversized_frame_is_refused_before_parsing() -> None:
    frame = b'{"method": "m", "params": {"x": "' + b"a" * LIMIT + b'"}}'
    with pytest.raises(InvalidRequest, match="over the 1024 byte limit"):
        decode_request(frame, LIMIT)
    # not even valid JSON: the size check comes first
    with pytest.raises(InvalidRequest, match="limit"):
        decode_request(b"{" * (LIMIT + 1), LIMIT)


def test_method_name_over_the_length_limit_is_invalid_request() -> None:
    assert decode_request(orjson.dumps({"method": "m" * MAX_METHOD_LENGTH}), LIMIT).method == "m" * MAX_METHOD_LENGTH
    with pytest.raises(InvalidRequest, match="over the 128 character limit") as info:
        decode_request(orjson.dumps({"request_id": "r", "method": "m" * (MAX_METHOD_LENGTH + 1)}), LIMIT)
    assert info.value.request_id == "r" and info.value.details == {"field": "method"}


def test_replies_have_the_seed_shape() -> None:
    ok = orjson.loads(encode_reply("r1", {"x": 1}, 1.23456))
    assert set(ok) == {"status", "request_id", "data", "error", "processing_time_ms", "timestamp"}
    assert ok["status"] == "success" and ok["error"] is None and ok["processing_time_ms"] == 1.235
    err = orjson.loads(encode_error("r2", ErrorCode.BUSY, "full", {"queue_limit": 3}))
    assert err["status"] == "error" and err["data"] is None
    assert err["error"] == {"code": "BUSY", "message": "full", "retryable": True, "details": {"queue_limit": 3}}
    assert orjson.loads(encode_error(None, ErrorCode.WORKER_LOST, "x"))["error"]["retryable"] is False
