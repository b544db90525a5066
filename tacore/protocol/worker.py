"""The broker <-> worker protocol, Majordomo style, packed into as few frames as possible.

After the ROUTER identity every message is one command frame (``HEADER`` + one command byte + a
fixed binary part); REQUEST and REPLY carry the client's request or the worker's reply in that same
frame, after the fixed part; READY and the broker's HEARTBEAT add one JSON payload frame:

    READY       worker -> broker  [b"TAW2\\x01", json {worker_id, pid, host, kind, credit, methods}]
    REQUEST     broker -> worker  [b"TAW2\\x02" <seq u64><budget_ms u32> request]
    REPLY       worker -> broker  [b"TAW2\\x03" <seq u64><ok u8><processing_ms f32><code_len u8><code> reply]
    HEARTBEAT   both ways         [b"TAW2\\x04"] (+ json broker snapshot when the broker sends it)
    DISCONNECT  both ways         [b"TAW2\\x05"]

One frame per request and per reply instead of Majordomo's five or six: each frame costs the broker
a Python call and its I/O thread a message, and the broker's CPU per request is the service's
ceiling; copying a request of a few hundred bytes into the command frame costs less than a frame.
"""

from __future__ import annotations

import struct
from typing import Final

HEADER: Final = b"TAW2"

READY: Final = HEADER + b"\x01"
REQUEST: Final = HEADER + b"\x02"
REPLY: Final = HEADER + b"\x03"
HEARTBEAT: Final = HEADER + b"\x04"
DISCONNECT: Final = HEADER + b"\x05"

COMMAND_LENGTH: Final = len(READY)
COMMAND_NAMES: Final = {READY: "READY", REQUEST: "REQUEST", REPLY: "REPLY", HEARTBEAT: "HEARTBEAT",
                        DISCONNECT: "DISCONNECT"}

#: ``budget_ms`` of a REQUEST whose request has no deadline.
NO_DEADLINE: Final = 0xFFFFFFFF

_REPLY = struct.Struct("<QBfB")
_REQUEST_BODY: Final = COMMAND_LENGTH + 12
_REPLY_FIXED: Final = COMMAND_LENGTH + _REPLY.size
SEQ_SLICE: Final = slice(COMMAND_LENGTH, COMMAND_LENGTH + 8)


class MalformedMessage(ValueError):
    """A frame that does not follow this protocol; dropped and logged, never a crash."""


def pack_seq(seq: int) -> bytes:
    return seq.to_bytes(8, "little")


def pack_request(seq: bytes, budget_ms: int | None, request: bytes) -> bytes:
    budget = NO_DEADLINE if budget_ms is None else max(0, min(budget_ms, NO_DEADLINE - 1))
    return b"".join((REQUEST, seq, budget.to_bytes(4, "little"), request))


def unpack_request(frame: bytes) -> tuple[bytes, int | None, bytes]:
    """-> (seq bytes, budget in ms or None, the client's request frame)."""
    if len(frame) < _REQUEST_BODY:
        raise MalformedMessage("REQUEST frame is too short")
    budget = int.from_bytes(frame[COMMAND_LENGTH + 8:_REQUEST_BODY], "little")
    return frame[SEQ_SLICE], None if budget == NO_DEADLINE else budget, frame[_REQUEST_BODY:]


def pack_reply(seq: bytes, ok: bool, processing_ms: float, error_code: str | None, reply: bytes) -> bytes:
    code = (error_code or "").encode("ascii", "replace")[:255]
    return b"".join((REPLY, seq, struct.pack("<BfB", 1 if ok else 0, processing_ms, len(code)), code, reply))


def unpack_reply(frame: bytes) -> tuple[bytes, bool, float, str | None, bytes]:
    """-> (seq bytes, ok, processing ms, error code or None, the reply frame for the client)."""
    if len(frame) < _REPLY_FIXED:
        raise MalformedMessage("REPLY frame is too short")
    _, ok, processing_ms, code_length = _REPLY.unpack_from(frame, COMMAND_LENGTH)
    body_at = _REPLY_FIXED + code_length
    if len(frame) < body_at:
        raise MalformedMessage("REPLY frame is shorter than its error code")
    code = frame[_REPLY_FIXED:body_at].decode("ascii", "replace") if code_length else None
    return frame[SEQ_SLICE], bool(ok), processing_ms, code, frame[body_at:]
