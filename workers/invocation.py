"""Running one request in a worker: parse it, check its deadline and cancel, claim it, call its handler.

``HandlerInvocation`` is the part of ``workers.runtime.Worker`` that turns one request body into its
REPLY entry, in the thread that runs handlers (no hand-off on the hot path). A non-idempotent method's
request is first claimed on the idempotency store, so a retry never runs it twice: a claim already
done answers with the stored reply; one still running or lost answers with an error that says so.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from tacore.errors import Cancelled, ErrorCode, TACoreError
from tacore.protocol import worker as wp
from tacore.protocol.envelope import MIN_PRIORITY, encode_error, encode_reply
from tacore.store.idempotency import IdempotencyStore, StoreUnavailable, params_hash
from workers.context import CallContext, set_current_call
from workers.registry import MethodRegistry, MethodSpec
from workers.watcher import RunningRequest, Watchdog

log = logging.getLogger("tacore.worker")


class HandlerInvocation:
    """A ``Worker``'s handling of one request (``_handle``) and its idempotency claim (``_claim``)."""

    # the worker's, set up by ``Worker.__init__``
    worker_id: str
    registry: MethodRegistry
    idempotency: IdempotencyStore | None
    recycle_grace_s: float
    broker_snapshot: dict[str, Any]
    served: int
    _watchdog: Watchdog | None
    _owner: str

    def _handle(self, running: RunningRequest, body: bytes) -> tuple[wp.ReplyEntry, str | None, str | None, bool]:
        """The REPLY entry for one request (the client's reply plus the status the broker keeps stats by),
        the request_id it claimed (its record is completed by the caller), its request_id, and whether
        its method is resumable."""
        started = time.perf_counter()
        request_id: str | None = None
        code: str | None = None
        claimed: str | None = None
        resumable = False
        try:
            request = orjson.loads(body)
            request_id = request.get("request_id")
            method = request["method"]
            running.urgent = request.get("priority") == MIN_PRIORITY
            deadline = running.deadline
            if deadline is not None and time.monotonic() >= deadline:
                raise TACoreError("deadline passed before the worker could start it; it was not run",
                                  code=ErrorCode.TIMEOUT)
            spec = self.registry.get(method)
            if spec is None:
                raise TACoreError(f"worker {self.worker_id} does not serve {method!r}", code=ErrorCode.UNKNOWN_METHOD)
            params = request.get("params") or {}
            model = spec.validate(params)
            if running.signal:
                raise Cancelled(f"cancelled before it started ({running.signal.reason}); it was not run",
                                details={"kind": running.signal.kind, "ran": False})
            if not spec.idempotent and isinstance(request_id, str) and self.idempotency is not None:
                stored = self._claim(request_id, spec, params, deadline)
                if stored is not None:
                    elapsed_ms = (time.perf_counter() - started) * 1000.0
                    return (running.seq, stored[0], elapsed_ms, stored[1], stored[2]), None, request_id, False
                claimed = request_id
                resumable = spec.resumable
            ctx = CallContext(request_id, method, self.worker_id, deadline, self.broker_snapshot, running.signal)
            if self._watchdog is not None and deadline is not None:
                self._watchdog.value = deadline + self.recycle_grace_s
            set_current_call(ctx)
            try:
                data = spec.call(model, ctx)
            finally:
                set_current_call(None)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            reply = encode_reply(request_id, data, elapsed_ms)
        except TACoreError as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            code = str(exc.code)
            reply = encode_error(request_id if isinstance(request_id, str) else None, exc.code, exc.message,
                                 exc.details, elapsed_ms)
        except Exception as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            log.exception("worker %s: handler failed (request_id=%s)", self.worker_id, request_id)
            code = str(ErrorCode.INTERNAL)
            reply = encode_error(request_id if isinstance(request_id, str) else None, ErrorCode.INTERNAL,
                                 f"{type(exc).__name__}: {exc}", None, elapsed_ms)
        self.served += 1
        rid = request_id if isinstance(request_id, str) else None
        return (running.seq, code is None, elapsed_ms, code, reply), claimed, rid, resumable

    def _claim(self, request_id: str, spec: MethodSpec, params: Any,
               deadline: float | None) -> tuple[bool, str | None, bytes] | None:
        """Claim a non-idempotent request for its first run; None to run it, else (ok, code, reply) to send."""
        assert self.idempotency is not None
        method = spec.name
        remaining = 0.0 if deadline is None else max(0.0, deadline - time.monotonic())
        lease_s = remaining + self.recycle_grace_s + 1.0 if deadline is not None else 86_400.0
        try:
            found = self.idempotency.claim(request_id, method, params_hash(params), self._owner, lease_s)
            if found.outcome == "lost" and spec.resumable and \
                    self.idempotency.take_over(request_id, self._owner, lease_s):
                log.warning("worker %s: %s %s: its first run ended without a reply (%s); running it again, as "
                            "the method keeps its own durable record", self.worker_id, method, request_id,
                            found.owner)
                return None
        except StoreUnavailable as exc:
            raise TACoreError(f"the idempotency store is unavailable ({exc}); the request was not run",
                              code=ErrorCode.UNAVAILABLE) from None
        if found.outcome == "claimed":
            return None
        if found.outcome == "done":
            return found.ok, found.error_code, found.reply
        first = {"owner": found.owner, "claimed_at": round(found.claimed_at, 3),
                 "lease_until": round(found.lease_until, 3)}
        if found.outcome == "mismatch":
            raise TACoreError(f"request_id {request_id!r} was already used for another call ({found.method}, "
                              "or other params); use a new request_id", code=ErrorCode.CONFLICT, details=first)
        if found.outcome == "running":
            retry_ms = max(50, min(1000, int((found.lease_until - time.time()) * 1000)))
            raise TACoreError(f"the first run of {request_id!r} is still in progress; retry with the same "
                              "request_id for its reply", code=ErrorCode.IN_PROGRESS,
                              details={**first, "retry_after_ms": retry_ms})
        raise TACoreError(f"the first run of {request_id!r} ended without a reply (its worker died or was "
                          "recycled); it may or may not have taken effect", code=ErrorCode.WORKER_LOST,
                          details={**first, "first_run": "interrupted"})
