"""The client library's errors: one root, a timeout family and a remote-error family carrying the code."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Root of every error the TACore client raises."""


class RequestTimeout(ClientError, TimeoutError):
    """No reply after every retry (the service may be down or overloaded)."""

    def __init__(self, method: str, request_id: str, attempts: int, timeout_ms: float) -> None:
        super().__init__(f"{method}: no reply after {attempts} attempt(s) of {timeout_ms:.0f} ms "
                         f"(request_id {request_id})")
        self.method = method
        self.request_id = request_id
        self.attempts = attempts


class RemoteError(ClientError):
    """The service answered with ``status: error``; ``code`` is one of the protocol's error codes."""

    def __init__(self, code: str, message: str, *, retryable: bool = False, details: Any = None,
                 request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.details = details
        self.request_id = request_id

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> RemoteError:
        error = reply.get("error") or {}
        return cls(str(error.get("code", "INTERNAL")), str(error.get("message", "")),
                   retryable=bool(error.get("retryable", False)), details=error.get("details"),
                   request_id=reply.get("request_id"))
