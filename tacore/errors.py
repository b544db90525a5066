"""One root error for TACore; each error carries its wire code and whether a retry may help."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Codes carried in a reply's ``error.code``; documented in docs/protocol.md."""

    INVALID_REQUEST = "INVALID_REQUEST"
    UNKNOWN_METHOD = "UNKNOWN_METHOD"
    INVALID_PARAMS = "INVALID_PARAMS"
    BUSY = "BUSY"
    TIMEOUT = "TIMEOUT"
    WORKER_LOST = "WORKER_LOST"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"
    CANCELLED = "CANCELLED"
    IN_PROGRESS = "IN_PROGRESS"
    FORBIDDEN = "FORBIDDEN"
    CONFLICT = "CONFLICT"


#: A retry of the same call may succeed for these codes and cannot do harm: the request was never run
#: (or, IN_PROGRESS, its first run is still open and a retry with the same request_id gets its reply).
#: A TIMEOUT of a request that was already at a worker is the exception: its reply says
#: ``retryable: false`` when the method is not idempotent (docs/protocol.md).
RETRYABLE_CODES = frozenset({ErrorCode.BUSY, ErrorCode.TIMEOUT, ErrorCode.UNAVAILABLE, ErrorCode.IN_PROGRESS})


class TACoreError(Exception):
    """Root of every error TACore raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, details: Any = None, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    def to_wire(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "retryable": self.retryable, "details": self.details}


class InvalidRequest(TACoreError):
    """The frame is not a well-formed request envelope."""

    code = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str, *, request_id: str | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.request_id = request_id


class UnknownMethod(TACoreError):
    code = ErrorCode.UNKNOWN_METHOD


class InvalidParams(TACoreError):
    code = ErrorCode.INVALID_PARAMS


class Busy(TACoreError):
    code = ErrorCode.BUSY


class DeadlineExceeded(TACoreError):
    code = ErrorCode.TIMEOUT


class WorkerLost(TACoreError):
    code = ErrorCode.WORKER_LOST


class Cancelled(TACoreError):
    """The request was cancelled (by its client, a preemption, its deadline or a stopping worker)."""

    code = ErrorCode.CANCELLED


class InProgress(TACoreError):
    """A non-idempotent request's first run (same request_id) is still open; retry later for its reply."""

    code = ErrorCode.IN_PROGRESS


class Conflict(TACoreError):
    """An id that must name one thing was used again for something else: a request_id for another call or
    other params, a client_order_id for another order."""

    code = ErrorCode.CONFLICT


class Unavailable(TACoreError):
    """A dependency the method needs (storage, the data agent, the exchange) is down."""

    code = ErrorCode.UNAVAILABLE


class InternalError(TACoreError):
    code = ErrorCode.INTERNAL


class Forbidden(TACoreError):
    """The caller's key does not hold the role the method requires, or it was revoked."""

    code = ErrorCode.FORBIDDEN


class ConfigError(TACoreError):
    """A setting is invalid; raised at start-up, never on the wire."""
