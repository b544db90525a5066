"""The broker <-> worker protocol, Majordomo style, packed into as few frames as possible.

After the ROUTER identity every message is one command frame (``HEADER`` + one command byte + a
fixed binary part), optionally followed by one payload frame:

    READY       worker -> broker  [b"TAW1\\x01", json {worker_id, pid, host, kind, credit, methods}]
    REQUEST     broker -> worker  [b"TAW1\\x02" + <seq u64><budget_ms u32>, request-frame]
    REPLY       worker -> broker  [b"TAW1\\x03" + <seq u64><ok u8><processing_ms f32> + error code, reply-frame]
    HEARTBEAT   both ways         [b"TAW1\\x04"] (+ json broker snapshot when the broker sends it)
    DISCONNECT  both ways         [b"TAW1\\x05"]

Two frames per message instead of Majordomo's five or six: each frame costs the broker a Python
call and the I/O thread a copy, and the broker's CPU per request is the service's ceiling.
"""

from __future__ import annotations

import struct
from typing import Final

HEADER: Final = b"TAW1"

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

_REQUEST = struct.Struct("<QI")
_REPLY = struct.Struct("<QBf")
SEQ_SLICE: Final = slice(COMMAND_LENGTH, COMMAND_LENGTH + 8)


class MalformedMessage(ValueError):
    """A frame that does not follow this protocol; dropped and logged, never a crash."""


def pack_seq(seq: int) -> bytes:
    return seq.to_bytes(8, "little")


def pack_request(seq: bytes, budget_ms: int | None) -> bytes:
    budget = NO_DEADLINE if budget_ms is None else max(0, min(budget_ms, NO_DEADLINE - 1))
    return REQUEST + seq + budget.to_bytes(4, "little")


def unpack_request(frame: bytes) -> tuple[bytes, int | None]:
    """-> (seq bytes, budget in ms or None)."""
    if len(frame) != COMMAND_LENGTH + _REQUEST.size:
        raise MalformedMessage("REQUEST command frame has the wrong size")
    budget = int.from_bytes(frame[COMMAND_LENGTH + 8:], "little")
    return frame[SEQ_SLICE], None if budget == NO_DEADLINE else budget


def pack_reply(seq: bytes, ok: bool, processing_ms: float, error_code: str | None = None) -> bytes:
    return REPLY + seq + struct.pack("<Bf", 1 if ok else 0, processing_ms) + (error_code or "").encode()


def unpack_reply(frame: bytes) -> tuple[bytes, bool, float, str | None]:
    """-> (seq bytes, ok, processing ms, error code or None)."""
    end = COMMAND_LENGTH + _REPLY.size
    if len(frame) < end:
        raise MalformedMessage("REPLY command frame is too short")
    _, ok, processing_ms = _REPLY.unpack_from(frame, COMMAND_LENGTH)
    code = frame[end:].decode("ascii", "replace") or None
    return frame[SEQ_SLICE], bool(ok), processing_ms, code
