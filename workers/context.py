"""What a handler knows about its call besides its params: who asked, its deadline, whether it was cancelled.

A handler that may run long polls ``ctx.cancelled`` (or waits on it, instead of sleeping) and bounds
every dependency call by ``ctx.timeout_s(cap)``: past its deadline the client has already been
answered ``TIMEOUT``, and a handler still running ``WORKER_RECYCLE_GRACE_MS`` later gets its pool
worker process killed and replaced (docs/protocol.md).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tacore.errors import Cancelled, DeadlineExceeded

_SIGNAL_LOCK = threading.Lock()  # taken only to cancel or to wait, never on a call's fast path


class CancelSignal:
    """Set once when the call is cancelled; true in a boolean context, and a handler may ``wait`` on it.

    Cheap to make (one per call): the ``threading.Event`` behind ``wait`` exists only once someone waits.
    """

    __slots__ = ("_event", "kind", "reason")

    def __init__(self) -> None:
        self.kind: str | None = None  # deadline | client | preempt | shutdown
        self.reason: str | None = None
        self._event: threading.Event | None = None

    def __bool__(self) -> bool:
        return self.kind is not None

    def is_set(self) -> bool:
        return self.kind is not None

    def set(self, kind: str, reason: str = "") -> bool:
        """Cancel (the first reason wins); True if this call did it."""
        with _SIGNAL_LOCK:
            if self.kind is not None:
                return False
            self.reason = reason or kind
            self.kind = kind
            if self._event is not None:
                self._event.set()
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; True if cancelled."""
        with _SIGNAL_LOCK:
            if self.kind is not None:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


@dataclass(slots=True)
class CallContext:
    """What a handler may know about the call besides its params."""

    request_id: str | None
    method: str
    worker_id: str
    deadline: float | None = None  # time.monotonic() value, None when the call has no deadline
    #: the last snapshot the broker sent with a heartbeat (queue_depth, live_workers, inflight, received_at); read-only
    broker: dict[str, Any] = field(default_factory=dict)
    #: set when the broker cancels the call (its deadline, the client's ``broker.cancel``, a preemption)
    #: or the worker stops; at the deadline it is set with kind ``deadline``
    cancelled: CancelSignal = field(default_factory=CancelSignal)

    def remaining_s(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def timeout_s(self, cap: float) -> float:
        """A dependency call's timeout: ``cap``, or less when the call's deadline is nearer (never below 1 ms)."""
        remaining = self.remaining_s()
        return cap if remaining is None else max(0.001, min(cap, remaining))

    def check(self) -> None:
        """Raise ``TIMEOUT`` past the deadline or ``CANCELLED`` once cancelled; loops call it between steps."""
        if self.cancelled.kind == "deadline" or self.expired:
            raise DeadlineExceeded(f"{self.method}: deadline passed while it ran; stopped")
        if self.cancelled:
            raise Cancelled(f"{self.method}: cancelled ({self.cancelled.reason})",
                            details={"kind": self.cancelled.kind, "reason": self.cancelled.reason})


_current = threading.local()


def current_call() -> CallContext | None:
    """The call this thread is running (set by the worker runtime), for code that bounds a dependency call
    by the request's deadline without the context being passed down to it."""
    ctx: CallContext | None = getattr(_current, "ctx", None)
    return ctx


def bound_timeout(cap: float) -> float:
    """``cap`` seconds, or less when the call this thread runs has a nearer deadline."""
    ctx = current_call()
    return cap if ctx is None else ctx.timeout_s(cap)


def set_current_call(ctx: CallContext | None) -> None:
    _current.ctx = ctx
