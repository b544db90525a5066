"""Wire formats: the client envelope (JSON request/reply) and the broker<->worker protocol."""

from __future__ import annotations

from tacore.protocol.envelope import Request, decode_request, encode_error, encode_reply, error_body

__all__ = ["Request", "decode_request", "encode_error", "encode_reply", "error_body"]
