"""The flow scheduler's state: flows, cycles and tasks as plain data, the actions the core returns, and the
two pure functions every part uses (a task's request_id, a flow's next tick). No I/O, no decisions."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from tacore.flows.model import EdgeSpec, FlowSpec, interval_seconds

TERMINAL_TASK = frozenset({"completed", "failed", "skipped", "cancelled"})
TERMINAL_CYCLE = frozenset({"completed", "failed", "cancelled", "missed"})
#: reply codes after which a task is tried again (if it has retries left)
RETRY_CODES = frozenset({"INTERNAL", "TIMEOUT", "UNAVAILABLE", "WORKER_LOST", "BUSY", "IN_PROGRESS"})
LEASE_GRACE_S = 5.0
MAX_RESENDS = 3
#: a tick later than this (and past the flow's catch-up window) did not run: it is recorded ``missed``
ON_TIME_S = 2.0
MAX_MISSED_ROWS = 100  # per catch-up pass; the rest are counted on the flow
MAX_EXTRA_PREEMPTIONS = 20
PARKED = -2  # a task's seq while max_concurrent holds it back (-1: out of the queues for another reason)
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0


class Graph:
    """A flow definition's edges indexed for the core (a cycle keeps the graph it started with)."""

    __slots__ = ("components", "downstream", "nodes", "roots", "spec", "upstream")

    def __init__(self, spec: FlowSpec) -> None:
        self.spec = spec
        self.nodes = {n.id: n for n in spec.nodes}
        self.upstream: dict[str, list[EdgeSpec]] = spec.upstream()
        self.downstream: dict[str, list[EdgeSpec]] = {n.id: [] for n in spec.nodes}
        for edge in spec.edges:
            self.downstream[edge.source].append(edge)
        self.roots = [n.id for n in spec.nodes if not self.upstream[n.id]]
        self.components = spec.component_of()


@dataclass(eq=False)
class Task:
    id: str
    flow_id: str
    cycle: int
    node_id: str
    component: int
    type: str
    priority: int
    timeout_ms: int
    retries: int
    status: str = "pending"
    attempt: int = 1
    preemptions: int = 0
    resends: int = 0
    request_id: str | None = None
    input_data: dict[str, Any] | None = None
    output_data: dict[str, Any] | None = None
    error_message: str | None = None
    worker: str | None = None
    created_at: float = 0.0
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    not_before: float = 0.0
    lease_until: float = 0.0
    seq: int = 0  # enqueue order, for FIFO within a priority

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_TASK


@dataclass(eq=False)
class Cycle:
    flow_id: str
    cycle: int
    trigger: str
    trigger_key: str
    scheduled_at: float | None
    status: str = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    event: dict[str, Any] | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    graph: Graph | None = None
    #: tasks not yet terminal (kept by the core, so settling a wide cycle is O(1) per reply); -1: count them
    remaining: int = -1

    def count_remaining(self) -> int:
        self.remaining = sum(1 for t in self.tasks.values() if not t.terminal)
        return self.remaining

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_CYCLE

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for task in self.tasks.values():
            out[task.status] = out.get(task.status, 0) + 1
        return out


@dataclass
class Flow:
    spec: FlowSpec
    status: str = "active"  # active | stopped
    next_cycle: int = 0
    next_run_at: float | None = None
    last_tick: float | None = None  # the scheduled time of the last tick handled
    missed_total: int = 0
    running: int = 0  # tasks holding a slot
    buffered: tuple[str, str, float | None] | None = None  # (trigger, key, scheduled_at) waiting (buffer_one)
    version: int = 1
    graph: Graph = field(init=False)
    open: dict[int, Cycle] = field(default_factory=dict)  # its unfinished cycles

    def __post_init__(self) -> None:
        self.graph = Graph(self.spec)

    @property
    def id(self) -> str:
        return self.spec.flow_id


@dataclass(frozen=True)
class Dispatch:
    task: Task
    resend: bool = False


@dataclass(frozen=True)
class Preempt:
    task: Task
    request_id: str
    reason: str
    urgent_id: str = ""  # the task it makes room for


@dataclass(frozen=True)
class Cancel:
    task: Task
    request_id: str
    reason: str


Action = Dispatch | Preempt | Cancel


class CoreError(Exception):
    """A command the core refuses (unknown flow or cycle, a cycle number in use); ``kind`` for the reply."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


_KEYS: dict[tuple[str, str], str] = {}


def request_id_for(task: Task) -> str:
    """``tf:<16 hex of sha256(flow, node)>:<cycle>:<attempt>.<preemptions>``: the same after a restart."""
    key = _KEYS.get((task.flow_id, task.node_id))
    if key is None:
        if len(_KEYS) > 100_000:
            _KEYS.clear()
        key = _KEYS[(task.flow_id, task.node_id)] = hashlib.sha256(
            f"{task.flow_id}\x00{task.node_id}".encode()).hexdigest()[:16]
    return f"tf:{key}:{task.cycle}:{task.attempt}.{task.preemptions}"


def next_tick(spec: FlowSpec, after: float) -> float | None:
    """The first scheduled time strictly after ``after`` (wall clock, aligned: a 1m flow on the minute)."""
    o = spec.options
    if o.cycle_interval:
        step = interval_seconds(o.cycle_interval)
        return (math.floor(after / step) + 1) * step
    if o.cron:
        from datetime import UTC, datetime

        from croniter import croniter

        return float(croniter(o.cron, datetime.fromtimestamp(after, UTC)).get_next(float))
    return None
