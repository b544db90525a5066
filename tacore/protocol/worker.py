"""The broker <-> worker protocol, Majordomo style (see docs/protocol.md).

Every message after the ROUTER identity starts with the protocol header and a one-byte command:

    READY       worker -> broker  [HEADER, READY, json {worker_id, pid, host, kind, credit, methods}]
    REQUEST     broker -> worker  [HEADER, REQUEST, seq, budget_ms, request-frame]
    REPLY       worker -> broker  [HEADER, REPLY, seq, meta json [status, error_code, processing_ms], reply-frame]
    HEARTBEAT   both ways         [HEADER, HEARTBEAT] (+ json broker snapshot when the broker sends it)
    DISCONNECT  both ways         [HEADER, DISCONNECT]
"""

from __future__ import annotations

from typing import Final

HEADER: Final = b"TAW1"

READY: Final = b"\x01"
REQUEST: Final = b"\x02"
REPLY: Final = b"\x03"
HEARTBEAT: Final = b"\x04"
DISCONNECT: Final = b"\x05"

COMMAND_NAMES: Final = {READY: "READY", REQUEST: "REQUEST", REPLY: "REPLY", HEARTBEAT: "HEARTBEAT",
                        DISCONNECT: "DISCONNECT"}

#: The budget sent with a REQUEST when the request has no deadline.
NO_DEADLINE: Final = b"-"
