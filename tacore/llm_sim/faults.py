"""Faults the simulator injects, the ways real endpoints fail: queued, each for a number of requests.

The first fault in the queue with requests left applies to the next chat completion request (``count``
-1: every request until cleared). ``slow`` delays the reply by ``delay_s`` and then answers normally, so a
client with a shorter timeout sees a timeout; ``invalid_json`` answers content that is not JSON,
``invalid_schema`` JSON without the fields asked for; the others answer OpenAI's error for the status.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After
    SERVER_ERROR = "server_error"  # 500
    UNAVAILABLE = "unavailable"  # 503 engine overloaded
    SLOW = "slow"  # answer after delay_s
    INVALID_JSON = "invalid_json"  # 200, content is not JSON
    INVALID_SCHEMA = "invalid_schema"  # 200, JSON without the fields asked for


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    count: int = Field(1, ge=-1, description="requests affected; -1 = every one until cleared")
    retry_after_s: float = Field(1.0, ge=0, le=3600, description="rate_limit: the Retry-After header")
    delay_s: float = Field(5.0, ge=0, le=600, description="slow: seconds before the answer")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """CLI form ``KIND[:COUNT[:ARG]]``: COUNT a number or ``always``; ARG retry_after_s or delay_s."""
        kind, *rest = text.split(":")
        fields: dict[str, Any] = {"kind": kind}
        if rest:
            fields["count"] = -1 if rest[0] == "always" else int(rest[0])
        if len(rest) > 1:
            fields["retry_after_s" if kind == FaultKind.RATE_LIMIT else "delay_s"] = float(rest[1])
        return cls.model_validate(fields)


class FaultPlan:
    """The queue of faults, shared by the request handlers and the control routes (thread-safe)."""

    def __init__(self, faults: list[Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = list(faults or [])
        self.applied: dict[str, int] = {}

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self) -> Fault | None:
        """The fault for the next request (and one fewer request left for it), or None."""
        with self._lock:
            while self._queue:
                fault = self._queue[0]
                if fault.count == 0:
                    self._queue.pop(0)
                    continue
                if fault.count > 0:
                    self._queue[0] = fault.model_copy(update={"count": fault.count - 1})
                self.applied[fault.kind] = self.applied.get(fault.kind, 0) + 1
                return fault
            return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.model_dump(mode="json") for f in self._queue if f.count != 0]
