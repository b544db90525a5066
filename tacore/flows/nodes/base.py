"""What a node type is: a config model, typed input and output handles, and ``execute``.

A user type subclasses ``NodeBase`` and registers with ``@register_node("name")`` (``registry.py``).
``execute`` gets a ``NodeContext`` (call broker methods, log, see cancellation), the validated config and
the values that arrived on its input handles, and returns ``{output_handle: value}``. A handle it does not
return is not taken: the nodes downstream of it are ``skipped`` (that is how a condition's other branch
ends). Raising ``NodeFailed`` (or any exception) fails the task; the scheduler may retry it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from tacore.errors import Cancelled, DeadlineExceeded, ErrorCode, TACoreError


class NodeFailed(TACoreError):
    """A node could not do its work (bad input, a dependency's error); retried if the flow allows."""

    code = ErrorCode.INTERNAL


class NodeConfig(BaseModel):
    """Base of the config models: unknown keys are refused (a typo is an error, not a default)."""

    model_config = ConfigDict(extra="forbid")


class NodeContext(Protocol):
    flow_id: str
    cycle: int
    node_id: str
    component_id: int
    attempt: int

    def call(self, method: str, params: dict[str, Any], *, timeout_s: float = 10.0,
             request_id: str | None = None) -> Any:
        """A broker method's data; ``TACoreError`` with its code otherwise."""
        ...

    def log(self, level: str, message: str) -> None: ...

    def check(self) -> None:
        """Raise ``CANCELLED``/``TIMEOUT`` once the task was stopped, preempted or overran."""
        ...

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) if the task was cancelled meanwhile."""
        ...

    def timeout_s(self, cap: float) -> float:
        """A dependency call's timeout: ``cap``, or less when the task's deadline is nearer."""
        ...


class NodeBase:
    type_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[BaseModel]] = NodeConfig
    #: input handle names; ``"*"``: any name (the value of each arriving edge under its target handle)
    inputs: ClassVar[tuple[str, ...]] = ("input",)
    outputs: ClassVar[tuple[str, ...]] = ("output",)
    description: ClassVar[str] = ""

    def execute(self, ctx: NodeContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class LocalContext:
    """A ``NodeContext`` over a plain caller function; the worker's ``node.execute`` and tests use it."""

    flow_id: str = "local"
    cycle: int = 0
    node_id: str = "node"
    component_id: int = 0
    attempt: int = 1
    caller: Callable[[str, dict[str, Any], float, str | None], Any] | None = None
    deadline: float | None = None  # time.monotonic()
    #: the worker's ``CancelSignal`` (kind, reason, wait); a fresh one when run outside a worker
    signal: CancelLike = field(default_factory=lambda: _Signal())
    logs: list[dict[str, Any]] = field(default_factory=list)

    def call(self, method: str, params: dict[str, Any], *, timeout_s: float = 10.0,
             request_id: str | None = None) -> Any:
        if self.caller is None:
            raise NodeFailed(f"{method}: this node runs without a broker connection")
        self.check()
        return self.caller(method, params, self.timeout_s(timeout_s), request_id)

    def log(self, level: str, message: str) -> None:
        self.logs.append({"level": level.upper(), "message": message[:4000], "ts": round(time.time(), 6)})

    def remaining_s(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def timeout_s(self, cap: float) -> float:
        remaining = self.remaining_s()
        return cap if remaining is None else max(0.001, min(cap, remaining))

    def check(self) -> None:
        kind = self.signal.kind
        if kind == "deadline" or (self.deadline is not None and time.monotonic() >= self.deadline):
            raise DeadlineExceeded(f"node {self.node_id}: its timeout passed while it ran; stopped")
        if kind is not None:
            raise Cancelled(f"node {self.node_id}: cancelled ({self.signal.reason})",
                            details={"kind": kind, "reason": self.signal.reason})

    def wait(self, seconds: float) -> bool:
        return self.signal.wait(max(0.0, seconds))


class CancelLike(Protocol):
    kind: str | None
    reason: str | None

    def wait(self, timeout: float | None = None) -> bool: ...


class _Signal:
    """A cancel signal for a node run outside a worker (tests, tools)."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.reason: str | None = None
        self._event = threading.Event()

    def set(self, kind: str, reason: str = "") -> None:
        self.kind, self.reason = kind, reason or kind
        self._event.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)
