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


class KeyRefused(RequestTimeout):
    """No reply, and the broker refused this client's CURVE key at the handshake (unknown, revoked, or not
    a client key) or the handshake failed (wrong broker key): retrying with the same key will not help."""

    def __init__(self, method: str, request_id: str, attempts: int, timeout_ms: float, refusal: str) -> None:
        super().__init__(method, request_id, attempts, timeout_ms)
        self.args = (f"{method}: {refusal} (no reply after {attempts} attempt(s); request_id {request_id})",)
        self.refusal = refusal


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
        """The error of an error reply, as ``Forbidden`` when its code is ``FORBIDDEN``."""
        error = reply.get("error") or {}
        code = str(error.get("code", "INTERNAL"))
        kind = Forbidden if code == FORBIDDEN else cls
        return kind(code, str(error.get("message", "")), retryable=bool(error.get("retryable", False)),
                    details=error.get("details"), request_id=reply.get("request_id"))


FORBIDDEN = "FORBIDDEN"


class Forbidden(RemoteError):
    """``FORBIDDEN``: this client's key lacks the role the method requires, or was revoked."""
