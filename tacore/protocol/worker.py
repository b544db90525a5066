"""The broker <-> worker protocol (TAW4), Majordomo style, packed into as few messages as possible.

After the ROUTER identity every message is one command frame (``HEADER`` + one command byte);
REQUEST and REPLY carry one or more entries in that same frame, each a fixed binary part and the
client's request (or the worker's reply); READY and the broker's HEARTBEAT add one JSON frame:

    READY       worker -> broker  [b"TAW4\\x01", json {worker_id, pid, host, kind, credit, methods}]
    REQUEST     broker -> worker  [b"TAW4\\x02" (<seq u64><budget_ms u32><length u32> request)+]
    REPLY       worker -> broker  [b"TAW4\\x03" (<seq u64><ok u8><processing_ms f32><code_len u8><length u32>
                                                 <code> reply)+]
    HEARTBEAT   both ways         [b"TAW4\\x04"] (+ json broker snapshot when the broker sends it)
    DISCONNECT  both ways         [b"TAW4\\x05"] (+ the reason, UTF-8, when the broker turns a worker away)
    CANCEL      broker -> worker  [b"TAW4\\x06" (<seq u64><reason u8><text_len u8><text>)+]
    HANDBACK    worker -> broker  [b"TAW4\\x07" <stuck_seq u64> (<seq u64>)*]

A worker answers every seq it was sent with exactly one REPLY entry, a cancelled one included
(``ok`` 0, code ``CANCELLED`` or ``TIMEOUT``, empty body when it never started), except the seqs it
hands back: HANDBACK says "I am stuck on ``stuck_seq``; these I have not started and never will",
so the broker may run them elsewhere without ever running one twice.

One message carries every request the broker has for a worker at one wake-up, and every reply a
worker has after one batch: each message costs the Python broker calls, and both I/O threads a
wake-up and a system call, which is most of the broker's CPU per request; copying a request of a
few hundred bytes into the frame costs far less.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Final

HEADER: Final = b"TAW4"

READY: Final = HEADER + b"\x01"
REQUEST: Final = HEADER + b"\x02"
REPLY: Final = HEADER + b"\x03"
HEARTBEAT: Final = HEADER + b"\x04"
DISCONNECT: Final = HEADER + b"\x05"
CANCEL: Final = HEADER + b"\x06"
HANDBACK: Final = HEADER + b"\x07"

COMMAND_LENGTH: Final = len(READY)
COMMAND_NAMES: Final = {READY: "READY", REQUEST: "REQUEST", REPLY: "REPLY", HEARTBEAT: "HEARTBEAT",
                        DISCONNECT: "DISCONNECT", CANCEL: "CANCEL", HANDBACK: "HANDBACK"}

#: Why the broker cancels a request (the CANCEL entry's reason byte; the handler reads the name).
CANCEL_DEADLINE: Final = 1
CANCEL_CLIENT: Final = 2
CANCEL_PREEMPT: Final = 3
CANCEL_SHUTDOWN: Final = 4  # the worker's own: it is stopping (never on the wire from the broker)
CANCEL_KINDS: Final = {CANCEL_DEADLINE: "deadline", CANCEL_CLIENT: "client", CANCEL_PREEMPT: "preempt",
                       CANCEL_SHUTDOWN: "shutdown"}

#: ``budget_ms`` of a request that has no deadline.
NO_DEADLINE: Final = 0xFFFFFFFF

#: (seq, budget_ms or None, the client's request frame)
RequestEntry = tuple[int, int | None, bytes]
#: (seq, ok, processing_ms, error code or None, the reply frame for the client)
ReplyEntry = tuple[int, bool, float, str | None, bytes]

#: (seq, reason kind, reason text)
CancelEntry = tuple[int, int, str]

_REQUEST_ENTRY = struct.Struct("<QII")
_REPLY_ENTRY = struct.Struct("<QBfBI")
_CANCEL_ENTRY = struct.Struct("<QBB")
_SEQ = struct.Struct("<Q")


class MalformedMessage(ValueError):
    """A frame that does not follow this protocol; dropped and logged, never a crash."""


def budget(budget_ms: int | None) -> int:
    """The u32 on the wire for a deadline ``budget_ms`` away (None: no deadline)."""
    return NO_DEADLINE if budget_ms is None else max(0, min(budget_ms, NO_DEADLINE - 1))


def pack_requests(entries: Iterable[RequestEntry]) -> bytes:
    """One REQUEST frame carrying ``entries`` in order."""
    pack = _REQUEST_ENTRY.pack
    parts = [REQUEST]
    for seq, budget_ms, request in entries:
        parts.append(pack(seq, budget(budget_ms), len(request)))
        parts.append(request)
    return b"".join(parts)


def unpack_requests(frame: bytes) -> list[RequestEntry]:
    """Every entry of a REQUEST frame; MalformedMessage if any is cut short or there is none."""
    end = len(frame)
    at = COMMAND_LENGTH
    entries: list[RequestEntry] = []
    unpack = _REQUEST_ENTRY.unpack_from
    size = _REQUEST_ENTRY.size
    while at < end:
        if end - at < size:
            raise MalformedMessage("REQUEST entry is too short")
        seq, budget_ms, length = unpack(frame, at)
        at += size
        if end - at < length:
            raise MalformedMessage("REQUEST entry is shorter than its length")
        entries.append((seq, None if budget_ms == NO_DEADLINE else budget_ms, frame[at:at + length]))
        at += length
    if not entries:
        raise MalformedMessage("REQUEST frame carries no request")
    return entries


def pack_replies(entries: Iterable[ReplyEntry]) -> bytes:
    """One REPLY frame carrying ``entries`` in order."""
    pack = _REPLY_ENTRY.pack
    parts = [REPLY]
    for seq, ok, processing_ms, error_code, reply in entries:
        code = (error_code or "").encode("ascii", "replace")[:255]
        parts.append(pack(seq, 1 if ok else 0, processing_ms, len(code), len(reply)))
        parts.append(code)
        parts.append(reply)
    return b"".join(parts)


def iter_replies(frame: bytes) -> Iterator[ReplyEntry]:
    """The entries of a REPLY frame in order; raises MalformedMessage where one breaks the format.

    A generator, so the broker acts on each reply before the one after it is checked: what a
    worker sent intact is delivered even when its frame is cut short further on.
    """
    end = len(frame)
    at = COMMAND_LENGTH
    unpack = _REPLY_ENTRY.unpack_from
    size = _REPLY_ENTRY.size
    if at >= end:
        raise MalformedMessage("REPLY frame carries no reply")
    while at < end:
        if end - at < size:
            raise MalformedMessage("REPLY entry is too short")
        seq, ok, processing_ms, code_length, length = unpack(frame, at)
        at += size
        body_at = at + code_length
        if end - body_at < length:
            raise MalformedMessage("REPLY entry is shorter than its error code and length")
        code = frame[at:body_at].decode("ascii", "replace") if code_length else None
        at = body_at + length
        yield seq, ok != 0, processing_ms, code, frame[body_at:at]


def pack_cancels(entries: Iterable[CancelEntry]) -> bytes:
    """One CANCEL frame; each reason text is cut to 255 bytes of UTF-8."""
    pack = _CANCEL_ENTRY.pack
    parts = [CANCEL]
    for seq, kind, text in entries:
        raw = text.encode("utf-8")[:255].decode("utf-8", "ignore").encode("utf-8")  # whole characters only
        parts.append(pack(seq, kind, len(raw)))
        parts.append(raw)
    return b"".join(parts)


def unpack_cancels(frame: bytes) -> list[CancelEntry]:
    """Every entry of a CANCEL frame; MalformedMessage if any is cut short or there is none."""
    end = len(frame)
    at = COMMAND_LENGTH
    size = _CANCEL_ENTRY.size
    entries: list[CancelEntry] = []
    while at < end:
        if end - at < size:
            raise MalformedMessage("CANCEL entry is too short")
        seq, kind, length = _CANCEL_ENTRY.unpack_from(frame, at)
        at += size
        if end - at < length:
            raise MalformedMessage("CANCEL entry is shorter than its reason")
        entries.append((seq, kind, frame[at:at + length].decode("utf-8", "replace")))
        at += length
    if not entries:
        raise MalformedMessage("CANCEL frame carries no entry")
    return entries


def pack_handback(stuck_seq: int, seqs: Iterable[int]) -> bytes:
    """One HANDBACK frame: the worker is stuck on ``stuck_seq`` and will never start ``seqs``."""
    pack = _SEQ.pack
    return b"".join([HANDBACK, pack(stuck_seq), *(pack(seq) for seq in seqs)])


def unpack_handback(frame: bytes) -> tuple[int, list[int]]:
    """(stuck_seq, returned seqs) of a HANDBACK frame; MalformedMessage unless whole seqs follow the header."""
    body = len(frame) - COMMAND_LENGTH
    if body < _SEQ.size or body % _SEQ.size:
        raise MalformedMessage("HANDBACK frame is not a whole number of seqs")
    seqs = [seq for (seq,) in _SEQ.iter_unpack(frame[COMMAND_LENGTH:])]
    return seqs[0], seqs[1:]
