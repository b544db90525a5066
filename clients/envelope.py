"""Building request frames and reading replies, the same for both clients."""

from __future__ import annotations

import json
import uuid
from typing import Any


def new_request_id() -> str:
    return uuid.uuid4().hex


def encode_request(method: str, params: dict[str, Any] | None, request_id: str, priority: int | None,
                   timeout_ms: float | None, internal: bool = False) -> bytes:
    """``internal`` marks TACore's own housekeeping calls: the broker counts them apart from users'."""
    request: dict[str, Any] = {"request_id": request_id, "method": method, "params": params or {}}
    if priority is not None:
        request["priority"] = priority
    if timeout_ms is not None:
        request["timeout_ms"] = timeout_ms
    if internal:
        request["internal"] = True
    return json.dumps(request, separators=(",", ":")).encode()


def decode_reply(frame: bytes) -> dict[str, Any]:
    reply = json.loads(frame)
    if not isinstance(reply, dict):
        raise ValueError("reply is not a JSON object")
    return reply


def in_progress_pause(reply: dict[str, Any], wait_ms: float) -> float | None:
    """Seconds to wait before asking again when ``reply`` is ``IN_PROGRESS``; None for any other reply."""
    error = reply.get("error")
    if reply.get("status") != "error" or not isinstance(error, dict) or error.get("code") != "IN_PROGRESS":
        return None
    details = error.get("details")
    after_ms = details.get("retry_after_ms") if isinstance(details, dict) else None
    return min(float(after_ms) if isinstance(after_ms, (int, float)) else 200.0, wait_ms) / 1000.0
