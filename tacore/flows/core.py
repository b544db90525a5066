"""The flow scheduler's pure core: flows, cycles and tasks as plain state, no I/O, time passed in.

The process (``scheduler.py``) feeds it replies, ticks, events and commands, persists what it marks
dirty, and carries out the actions it returns (``Dispatch``, ``Preempt``, ``Cancel``). Every decision
lives here, so a hypothesis state machine can drive it (tests/unit/flows/test_core_machine.py).

Invariants: at most ``slots`` tasks hold a slot (dispatched, no answer yet); a flow holds at most
``max_concurrent``; a cycle exists at most once per ``(flow, trigger_key)`` (also a unique key in the
store); every task of a finished cycle is terminal.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
import random
from collections import deque
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


class Core:
    def __init__(self, slots: int, *, aging_s: float = 10.0, rng: random.Random | None = None) -> None:
        self.slots = max(1, slots)
        self.aging_s = aging_s
        self.rng = rng or random.Random()
        self.flows: dict[str, Flow] = {}
        self.cycles: dict[tuple[str, int], Cycle] = {}  # the unfinished ones (and recently finished)
        self.keys: set[tuple[str, str]] = set()  # (flow, trigger_key) of every cycle this core created or loaded
        self.by_request: dict[str, Task] = {}  # request_id -> running task
        #: per priority, FIFO of (seq, task): an entry counts only while the task is queued with that seq
        self.queues: list[deque[tuple[int, Task]]] = [deque() for _ in range(10)]
        self.delayed: list[Task] = []  # retries waiting for their backoff
        self.parked: dict[str, deque[Task]] = {}  # flow -> tasks held back by max_concurrent
        self.used = 0
        self._seq = 0
        self._extra: dict[str, int] = {}  # urgent task id -> further preemptions made for it
        self._leases: list[tuple[float, int, Task]] = []  # heap of (lease_until, seq, task); stale ones skipped
        self.due_at: float | None = None  # the earliest next_run_at of an active flow (or earlier)
        # what the process must persist / log
        self.dirty_flows: set[str] = set()
        self.dirty_cycles: dict[tuple[str, int], Cycle] = {}
        self.dirty_tasks: dict[str, Task] = {}
        self.logs: list[tuple[str, str, str, float]] = []  # (task_id, level, message, at)
        self.stats = {"cycles_started": 0, "cycles_missed": 0, "preemptions": 0, "dispatched": 0, "retries": 0,
                      "resends": 0}

    # -- flows -----------------------------------------------------------------------------------
    def register(self, spec: FlowSpec, now: float) -> Flow:
        old = self.flows.get(spec.flow_id)
        flow = Flow(spec, status="active" if spec.options.start else "stopped")
        if old is not None:
            flow.next_cycle, flow.missed_total, flow.version = old.next_cycle, old.missed_total, old.version + 1
            flow.running, flow.last_tick, flow.open = old.running, old.last_tick, old.open
        flow.next_run_at = next_tick(spec, now) if flow.status == "active" else None
        self.hint(flow.next_run_at)
        self.flows[spec.flow_id] = flow
        self.dirty_flows.add(spec.flow_id)
        return flow

    def hint(self, at: float | None) -> None:
        """A flow's next run changed: ``due`` must look by then."""
        if at is not None and (self.due_at is None or at < self.due_at):
            self.due_at = at

    def flow(self, flow_id: str) -> Flow:
        flow = self.flows.get(flow_id)
        if flow is None:
            raise CoreError(f"no flow {flow_id!r}", "not_found")
        return flow

    def stop_flow(self, flow_id: str, now: float, reason: str = "flow stopped") -> list[Action]:
        flow = self.flow(flow_id)
        flow.status = "stopped"
        flow.next_run_at = None
        flow.buffered = None
        self.dirty_flows.add(flow_id)
        actions: list[Action] = []
        for cycle in list(flow.open.values()):
            actions += self._stop_tasks(cycle, None, now, reason)
        return actions

    def resume_flow(self, flow_id: str, now: float) -> None:
        flow = self.flow(flow_id)
        flow.status = "active"
        flow.next_run_at = next_tick(flow.spec, now)
        self.hint(flow.next_run_at)
        self.dirty_flows.add(flow_id)

    # -- cycles ----------------------------------------------------------------------------------
    def running_cycles(self, flow_id: str) -> list[Cycle]:
        flow = self.flows.get(flow_id)
        return [] if flow is None else list(flow.open.values())

    def trigger(self, flow_id: str, now: float, trigger: str, key: str, scheduled_at: float | None = None,
                number: int | None = None, event: dict[str, Any] | None = None) -> tuple[Cycle | None, list[Action]]:
        """Start a cycle (applying the overlap policy); a key seen before starts nothing."""
        flow = self.flow(flow_id)
        if (flow_id, key) in self.keys:
            return None, []
        if number is not None and ((flow_id, number) in self.cycles or number < 0):
            raise CoreError(f"cycle {number} of {flow_id!r} exists already")
        actions: list[Action] = []
        running = self.running_cycles(flow_id)
        if running and trigger != "manual":
            policy = flow.spec.options.overlap
            if policy == "skip":
                return self._missed(flow, now, key, scheduled_at, trigger,
                                    f"overlap skip: cycle {running[0].cycle} still running"), []
            if policy == "buffer_one":
                if flow.buffered is None:
                    flow.buffered = (trigger, key, scheduled_at)
                    self.keys.add((flow_id, key))
                    return None, []
                return self._missed(flow, now, key, scheduled_at, trigger,
                                    "overlap buffer_one: a tick is already waiting"), []
            for cycle in running:  # cancel_other
                actions += self._stop_tasks(cycle, None, now, f"overlap cancel_other: tick {key} replaces it")
        cycle = self._new_cycle(flow, now, trigger, key, scheduled_at, number, event)
        return cycle, actions

    def _new_cycle(self, flow: Flow, now: float, trigger: str, key: str, scheduled_at: float | None,
                   number: int | None, event: dict[str, Any] | None) -> Cycle:
        if number is None:
            number = flow.next_cycle
        flow.next_cycle = max(flow.next_cycle, number + 1)
        cycle = Cycle(flow.id, number, trigger, key, scheduled_at, status="running", started_at=now, event=event,
                      graph=flow.graph)
        self.keys.add((flow.id, key))
        self.cycles[(flow.id, number)] = cycle
        flow.open[number] = cycle
        self._make_tasks(flow, cycle, now)
        self.stats["cycles_started"] += 1
        self.dirty_flows.add(flow.id)
        self._mark(cycle)
        for node_id in flow.graph.roots:
            self._ready(cycle, cycle.tasks[node_id], now)
        return cycle

    def _make_tasks(self, flow: Flow, cycle: Cycle, now: float) -> None:
        """The cycle's tasks for the nodes it lacks, ``pending``. Not marked dirty: a task's row is written
        when it first changes (queued, running, done), so a quick node costs one row write, not three;
        a restart recreates the rows that were never written."""
        o = flow.spec.options
        for node in flow.spec.nodes:
            if node.id in cycle.tasks:
                continue
            task = Task(os.urandom(16).hex(), flow.id, cycle.cycle, node.id, flow.graph.components[node.id], node.type,
                        o.priority, node.timeout_ms or o.timeout_ms,
                        o.retries if node.retries is None else node.retries, created_at=now)
            cycle.tasks[node.id] = task
        cycle.count_remaining()

    def _missed(self, flow: Flow, now: float, key: str, scheduled_at: float | None, trigger: str,
                why: str) -> Cycle:
        number = flow.next_cycle
        flow.next_cycle += 1
        cycle = Cycle(flow.id, number, trigger, key, scheduled_at, status="missed", finished_at=now, error=why)
        self.keys.add((flow.id, key))
        self.stats["cycles_missed"] += 1
        flow.missed_total += 1
        self.dirty_flows.add(flow.id)
        self._mark(cycle)
        return cycle

    def due(self, now: float) -> list[Action]:
        """Run (or record as missed) every scheduled tick up to ``now``."""
        actions: list[Action] = []
        if self.due_at is None or now < self.due_at:
            return actions  # nothing due: no walk over every flow on each loop turn
        earliest: float | None = None
        for flow in self.flows.values():
            if flow.status != "active" or flow.next_run_at is None:
                continue
            window = max(flow.spec.options.catch_up_s, ON_TIME_S)
            recorded = 0
            while flow.next_run_at is not None and flow.next_run_at <= now:
                tick = flow.next_run_at
                key = f"schedule:{tick:.3f}"
                if now - tick > window:
                    if recorded < MAX_MISSED_ROWS and (flow.id, key) not in self.keys:
                        self._missed(flow, now, key, tick, "schedule",
                                     f"not run: {now - tick:.1f} s late (scheduler down?), past the catch-up window")
                        recorded += 1
                    elif (flow.id, key) not in self.keys:
                        flow.missed_total += 1
                        self.stats["cycles_missed"] += 1
                else:
                    _, more = self.trigger(flow.id, now, "schedule", key, tick)
                    actions += more
                flow.last_tick = tick
                flow.next_run_at = next_tick(flow.spec, tick)
                self.dirty_flows.add(flow.id)
            if flow.status == "active" and flow.next_run_at is not None and \
                    (earliest is None or flow.next_run_at < earliest):
                earliest = flow.next_run_at
        self.due_at = earliest
        return actions

    def next_wakeup(self) -> float | None:
        """When the loop must look again (a tick, a backoff, a lease), at the latest."""
        while self._leases and not self._live_lease(self._leases[0]):
            heapq.heappop(self._leases)
        times = [t for t in (self.due_at, self._leases[0][0] if self._leases else None) if t is not None]
        times += [t.not_before for t in self.delayed]
        return min(times) if times else None

    def _lease(self, task: Task, now: float) -> None:
        task.lease_until = now + task.timeout_ms / 1000.0 + LEASE_GRACE_S
        self._seq += 1
        heapq.heappush(self._leases, (task.lease_until, self._seq, task))

    def _live_lease(self, entry: tuple[float, int, Task]) -> bool:
        task = entry[2]
        return task.request_id is not None and self.by_request.get(task.request_id) is task and \
            task.lease_until == entry[0]

    def stop_cycle(self, flow_id: str, number: int, component: int | None, now: float,
                   reason: str = "stopped") -> list[Action]:
        self.flow(flow_id)
        cycle = self.cycles.get((flow_id, number))
        if cycle is None:
            raise CoreError(f"cycle {number} of {flow_id!r} is not running", "not_found")
        if component is not None and not any(t.component == component for t in cycle.tasks.values()):
            raise CoreError(f"flow {flow_id!r} has no component {component}", "not_found")
        return self._stop_tasks(cycle, component, now, reason)

    def stop_node(self, node_id: str, flow_id: str | None, now: float) -> list[Action]:
        actions: list[Action] = []
        for cycle in list(self.cycles.values()):
            if cycle.terminal or (flow_id is not None and cycle.flow_id != flow_id):
                continue
            task = cycle.tasks.get(node_id)
            if task is not None and not task.terminal:
                actions += self._cancel_task(cycle, task, now, f"node {node_id} stopped")
                self._settle(cycle, now)
        return actions

    def retry_cycle(self, flow_id: str, number: int, now: float, loaded: Cycle | None = None) -> Cycle:
        """Re-run the failed/skipped/cancelled tasks of a finished cycle on the stored outputs of the rest."""
        self.flow(flow_id)
        cycle = self.cycles.get((flow_id, number)) or loaded
        if cycle is None:
            raise CoreError(f"no cycle {number} of {flow_id!r}", "not_found")
        if not cycle.terminal:
            raise CoreError(f"cycle {number} of {flow_id!r} is still {cycle.status}")
        if cycle.status == "missed":
            raise CoreError(f"cycle {number} of {flow_id!r} never ran (missed)")
        flow = self.flows[flow_id]
        if cycle.graph is None:
            gone = sorted(set(cycle.tasks) - set(flow.graph.nodes))
            if gone:  # a stored cycle is re-run on the flow's current definition, which must still hold its nodes
                raise CoreError(f"cycle {number} of {flow_id!r} ran nodes the flow's definition no longer has "
                                f"({', '.join(gone)}): run a new cycle instead")
            cycle.graph = flow.graph
        self.cycles[(flow_id, number)] = cycle
        flow.open[number] = cycle
        cycle.status, cycle.finished_at, cycle.error, cycle.trigger = "running", None, None, "retry"
        cycle.remaining = -1
        for task in cycle.tasks.values():
            if task.status in ("failed", "skipped", "cancelled"):
                task.status, task.error_message, task.output_data = "pending", None, None
                task.attempt += 1
                task.finished_at = task.started_at = None
                self.dirty_tasks[task.id] = task
        cycle.count_remaining()
        self._mark(cycle)
        for node_id in cycle.graph.roots:
            if cycle.tasks[node_id].status == "pending":
                self._ready(cycle, cycle.tasks[node_id], now)
        for task in list(cycle.tasks.values()):
            if task.status == "pending":
                self._maybe_ready(cycle, task, now)
        self._settle(cycle, now)
        return cycle

    # -- readiness ---------------------------------------------------------------------------------
    @staticmethod
    def _graph(cycle: Cycle) -> Graph:
        assert cycle.graph is not None
        return cycle.graph

    def _ready(self, cycle: Cycle, task: Task, now: float) -> None:
        inputs: dict[str, Any] = {}
        upstream = self._graph(cycle).upstream[task.node_id]
        if cycle.event is not None and not upstream:
            inputs["event"] = cycle.event
        for edge in upstream:
            source = cycle.tasks[edge.source].output_data or {}
            value = source.get(edge.source_handle)
            if edge.target_handle in inputs:
                prior = inputs[edge.target_handle]
                inputs[edge.target_handle] = [*prior, value] if isinstance(prior, _Many) else _Many([prior, value])
            else:
                inputs[edge.target_handle] = value
        task.input_data = {k: list(v) if isinstance(v, _Many) else v for k, v in inputs.items()}
        self._enqueue(task, now)

    def _enqueue(self, task: Task, now: float, front: bool = False) -> None:
        task.status = "queued"
        task.queued_at = task.queued_at or now
        self._push(task, front)
        self.dirty_tasks[task.id] = task

    def _push(self, task: Task, front: bool = False) -> None:
        self._seq += 1
        task.seq = self._seq
        if front:
            self.queues[task.priority].appendleft((task.seq, task))
        else:
            self.queues[task.priority].append((task.seq, task))

    def _maybe_ready(self, cycle: Cycle, task: Task, now: float) -> None:
        """After an upstream task ended: run ``task`` once all its inputs are in, or skip it."""
        if task.status != "pending":
            return
        edges = self._graph(cycle).upstream[task.node_id]
        sources = [cycle.tasks[e.source] for e in edges]
        if not all(s.terminal for s in sources):
            return
        dead = [e for e in edges if not _live(cycle, e)]
        if dead:
            e = dead[0]
            src = cycle.tasks[e.source]
            why = (f"upstream {e.source} {src.status}" if src.status != "completed"
                   else f"upstream {e.source} did not emit {e.source_handle!r}")
            self._finish(cycle, task, "skipped", now, error=why)
            return
        self._ready(cycle, task, now)

    # -- dispatch ------------------------------------------------------------------------------------
    def effective(self, task: Task, now: float) -> int:
        waited = now - (task.queued_at or now)
        return max(0, task.priority - int(waited / self.aging_s)) if self.aging_s > 0 else task.priority

    def _next_queued(self, now: float) -> Task | None:
        best: Task | None = None
        best_key: tuple[int, int] | None = None
        for queue in self.queues:
            while queue and (queue[0][1].status != "queued" or queue[0][1].seq != queue[0][0]):
                queue.popleft()  # stopped, dispatched or moved since it was queued
            if queue:
                head = queue[0][1]
                key = (self.effective(head, now), head.seq)
                if best_key is None or key < best_key:
                    best, best_key = head, key
        return best

    def schedule(self, now: float) -> list[Action]:
        """Dispatch what may run now (priority with aging, slots, max_concurrent); preempt for priority 0."""
        actions: list[Action] = []
        if self.delayed:
            due = [t for t in self.delayed if t.not_before <= now]
            if due:
                self.delayed = [t for t in self.delayed if t.not_before > now]
                for waiting in due:
                    if waiting.status == "queued":
                        self._push(waiting)
        for flow_id, parked in self.parked.items():  # flows with room again (a task of theirs ended or stopped)
            if not parked:
                continue
            owner = self.flows.get(flow_id)
            limit = owner.spec.options.max_concurrent if owner is not None else 0
            room = len(parked) if owner is None or not limit else limit - owner.running
            while parked and room > 0:
                waiting = parked.popleft()
                if waiting.status == "queued" and waiting.seq == PARKED:
                    self._push(waiting, front=True)
                    room -= 1
        while True:
            task = self._next_queued(now)
            if task is None:
                break
            flow = self.flows[task.flow_id]
            limit = flow.spec.options.max_concurrent
            if limit and flow.running >= limit:
                self.queues[task.priority].popleft()
                task.seq = PARKED  # out of the queues until its flow has room
                self.parked.setdefault(flow.id, deque()).append(task)
                continue
            if self.used >= self.slots:
                if task.priority == 0:
                    actions += self._preempt_for(task, now)
                    if self.used < self.slots:
                        continue
                break
            self.queues[task.priority].popleft()
            actions.append(self._dispatch(task, now))
        return actions

    def _dispatch(self, task: Task, now: float) -> Dispatch:
        flow = self.flows[task.flow_id]
        task.status = "running"
        task.request_id = request_id_for(task)
        task.started_at = now
        self._lease(task, now)
        task.resends = 0
        self.by_request[task.request_id] = task
        self.used += 1
        flow.running += 1
        self.stats["dispatched"] += 1
        self.dirty_tasks[task.id] = task
        return Dispatch(task)

    def _preempt_for(self, urgent: Task, now: float, *, every_slot: bool = True,
                     at_workers: set[str] | None = None) -> list[Action]:
        # not one dispatched this very turn (an aged low-priority task may just have gone ahead of it)
        running = [t for t in self.by_request.values() if t.priority > urgent.priority and (t.started_at or 0) < now
                   and (at_workers is None or t.request_id in at_workers)]
        if every_slot and len(running) < self.used:  # not every slot holds lower-priority work
            return []
        if not running:
            return []
        # the lowest priority; of those the longest dispatched, the likeliest to be running at a worker
        # (the broker queues the others behind it) rather than queued
        victim = max(running, key=lambda t: (t.priority, -(t.started_at or 0.0)))
        rid = victim.request_id or ""
        self._release(victim)
        victim.preemptions += 1
        victim.status = "queued"
        self.stats["preemptions"] += 1
        self.logs.append((victim.id, "WARNING", f"preempted by {urgent.flow_id}/{urgent.node_id} (priority "
                          f"{urgent.priority}); re-queued without spending a retry", now))
        self._enqueue(victim, now, front=True)
        return [Preempt(victim, rid, f"preempted by priority-{urgent.priority} node {urgent.node_id}", urgent.id)]

    def preempt_again(self, urgent_id: str, now: float, at_workers: set[str] | None = None) -> list[Action]:
        """The broker said the task preempted for ``urgent_id`` was still queued there (no worker freed):
        while the urgent task waits, preempt another, one of ``at_workers`` (the request_ids the broker
        says workers run) when known (at most ``MAX_EXTRA_PREEMPTIONS`` times)."""
        urgent = next((t for t in self.by_request.values() if t.id == urgent_id), None)
        done = self._extra.get(urgent_id, 0)
        if urgent is None or done >= MAX_EXTRA_PREEMPTIONS:
            self._extra.pop(urgent_id, None)
            return []
        self._extra[urgent_id] = done + 1
        return self._preempt_for(urgent, now, every_slot=False, at_workers=at_workers)

    def _release(self, task: Task) -> None:
        if task.request_id is not None and self.by_request.pop(task.request_id, None) is not None:
            self.used -= 1
            flow = self.flows.get(task.flow_id)
            if flow is not None:
                flow.running -= 1
                parked = self.parked.get(task.flow_id)
                while parked:
                    waiting = parked.popleft()
                    if waiting.status == "queued" and waiting.seq == PARKED:
                        self._push(waiting, front=True)
                        break

    def expire(self, now: float) -> list[Action]:
        """Ask again (same request_id) for running tasks whose lease passed; fail them after a few tries."""
        actions: list[Action] = []
        overdue: list[Task] = []
        while self._leases and self._leases[0][0] <= now:
            lease_until, _, task = heapq.heappop(self._leases)
            if task.request_id in self.by_request and self.by_request[task.request_id] is task and \
                    task.lease_until == lease_until:
                overdue.append(task)
        for task in overdue:
            if task.resends < MAX_RESENDS:
                task.resends += 1
                self._lease(task, now)
                self.stats["resends"] += 1
                self.logs.append((task.id, "WARNING", f"no reply by its lease; asked again ({task.resends})", now))
                actions.append(Dispatch(task, resend=True))
            else:
                actions += self.on_reply(task.request_id or "", {"status": "error", "error": {
                    "code": "WORKER_LOST", "message": f"no reply after {MAX_RESENDS} requests"}}, now)
        return actions

    # -- replies -------------------------------------------------------------------------------------
    def on_reply(self, request_id: str, reply: dict[str, Any], now: float) -> list[Action]:
        task = self.by_request.get(request_id)
        if task is None:
            return []  # late: the task was stopped, preempted or already answered
        cycle = self.cycles[(task.flow_id, task.cycle)]
        self._release(task)
        task.worker = reply.get("worker") or task.worker
        data = reply.get("data") if isinstance(reply.get("data"), dict) else None
        for entry in (data or {}).get("logs", []) if data else []:
            self.logs.append((task.id, str(entry.get("level", "INFO")), str(entry.get("message", "")),
                              float(entry.get("ts", now))))
        if reply.get("status") == "success" and data is not None:
            outputs = data.get("outputs") or {}
            task.worker = data.get("worker") or task.worker
            self._finish(cycle, task, "completed", now, outputs=outputs)
        else:
            error = reply.get("error") or {}
            code = str(error.get("code", "INTERNAL"))
            message = f"{code}: {error.get('message', '')}"
            if code in RETRY_CODES and task.attempt <= task.retries:
                task.attempt += 1
                task.error_message = message
                delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (task.attempt - 2)) * self.rng.uniform(0.8, 1.2)
                task.not_before = now + delay
                task.seq = -1
                task.status = "queued"
                task.queued_at = now
                self.delayed.append(task)
                self.stats["retries"] += 1
                self.dirty_tasks[task.id] = task
                self.logs.append((task.id, "WARNING", f"attempt {task.attempt - 1} failed ({message[:300]}); "
                                  f"retrying in {delay:.2f} s", now))
            else:
                self.logs.append((task.id, "ERROR", message[:2000], now))
                self._finish(cycle, task, "failed", now, error=message)
        self._settle(cycle, now)
        return []

    def _finish(self, cycle: Cycle, task: Task, status: str, now: float, *, outputs: dict[str, Any] | None = None,
                error: str | None = None) -> None:
        if not task.terminal:
            cycle.remaining -= 1
        task.status = status
        task.finished_at = now
        if outputs is not None:
            task.output_data = outputs
        if error is not None:
            task.error_message = error
        self.dirty_tasks[task.id] = task
        for edge in self._graph(cycle).downstream[task.node_id]:
            self._maybe_ready(cycle, cycle.tasks[edge.target], now)

    def _cancel_task(self, cycle: Cycle, task: Task, now: float, reason: str) -> list[Action]:
        actions: list[Action] = []
        if task.status == "running" and task.request_id is not None:
            actions.append(Cancel(task, task.request_id, reason))
            self._release(task)
        if task in self.delayed:
            self.delayed.remove(task)
        parked = self.parked.get(task.flow_id)
        if parked and task in parked:
            parked.remove(task)
        self._finish(cycle, task, "cancelled", now, error=reason)
        return actions

    def _stop_tasks(self, cycle: Cycle, component: int | None, now: float, reason: str) -> list[Action]:
        actions: list[Action] = []
        for task in cycle.tasks.values():
            if not task.terminal and (component is None or task.component == component):
                actions += self._cancel_task(cycle, task, now, reason)
        self._settle(cycle, now)
        return actions

    def _settle(self, cycle: Cycle, now: float) -> None:
        """End the cycle once every task is terminal; start a buffered tick."""
        if cycle.remaining < 0:
            cycle.count_remaining()
        if cycle.terminal or cycle.remaining > 0:
            return
        statuses = {t.status for t in cycle.tasks.values()}
        cycle.status = "failed" if "failed" in statuses else "cancelled" if "cancelled" in statuses else "completed"
        failed = [t for t in cycle.tasks.values() if t.status == "failed"]
        if failed:
            cycle.error = f"{failed[0].node_id}: {failed[0].error_message}"[:2000]
        cycle.finished_at = now
        self._mark(cycle)
        self.cycles.pop((cycle.flow_id, cycle.cycle), None)
        flow = self.flows.get(cycle.flow_id)
        if flow is not None:
            flow.open.pop(cycle.cycle, None)
        if flow is not None and flow.buffered is not None and flow.status == "active" and \
                not self.running_cycles(flow.id):
            trigger, key, scheduled_at = flow.buffered
            flow.buffered = None
            self.keys.discard((flow.id, key))
            self.trigger(flow.id, now, trigger, key, scheduled_at)

    def _mark(self, cycle: Cycle) -> None:
        self.dirty_cycles[(cycle.flow_id, cycle.cycle)] = cycle

    # -- restore -------------------------------------------------------------------------------------
    def restore_cycle(self, cycle: Cycle, now: float) -> list[Action]:
        """Take back an unfinished cycle after a restart: finished tasks stay, running ones are asked again
        with their request_id, queued ones are queued, pending ones wait for their inputs."""
        flow = self.flows[cycle.flow_id]
        if cycle.graph is None:
            cycle.graph = flow.graph
        self.cycles[(cycle.flow_id, cycle.cycle)] = cycle
        flow.open[cycle.cycle] = cycle
        flow.next_cycle = max(flow.next_cycle, cycle.cycle + 1)
        self.keys.add((cycle.flow_id, cycle.trigger_key))
        actions: list[Action] = []
        if len(cycle.tasks) < len(flow.spec.nodes):
            # tasks whose rows were never written (pending, or changed within the last write-behind window):
            # made again as pending; one that had been dispatched gets the same request_id when it runs
            cycle.status = "running"
            self._make_tasks(flow, cycle, now)
            self._mark(cycle)
        cycle.count_remaining()
        for task in cycle.tasks.values():
            if task.status == "running" and task.request_id is not None:
                if self.used < self.slots:
                    self.by_request[task.request_id] = task
                    self.used += 1
                    flow.running += 1
                    self._lease(task, now)
                    actions.append(Dispatch(task, resend=True))
                else:
                    self._enqueue(task, now, front=True)
            elif task.status in ("queued", "preempted"):
                self._enqueue(task, now)
        for task in cycle.tasks.values():
            if task.status == "pending":
                self._maybe_ready(cycle, task, now)
        self._settle(cycle, now)
        return actions

    def forget(self, cycle: Cycle) -> set[str]:
        """Drop a cycle the store refused (another scheduler made it): its tasks never run here. Returns
        their ids, so the caller can drop the dispatches it was about to send."""
        flow = self.flows.get(cycle.flow_id)
        if flow is not None:
            flow.open.pop(cycle.cycle, None)
        self.cycles.pop((cycle.flow_id, cycle.cycle), None)
        for task in cycle.tasks.values():
            self._release(task)
            task.status = "cancelled"
            task.seq = -1
            self.dirty_tasks.pop(task.id, None)
            if task in self.delayed:
                self.delayed.remove(task)
        self.dirty_cycles.pop((cycle.flow_id, cycle.cycle), None)
        return {t.id for t in cycle.tasks.values()}

    def check(self) -> None:
        """The invariants, for tests: slots, per-flow counts, running tasks are the ones holding slots."""
        assert 0 <= self.used <= self.slots, (self.used, self.slots)
        assert self.used == len(self.by_request)
        for flow in self.flows.values():
            held = sum(1 for t in self.by_request.values() if t.flow_id == flow.id)
            assert flow.running == held, (flow.id, flow.running, held)
        for task in self.by_request.values():
            assert task.status == "running"


class _Many(list[Any]):
    """Several edges into one input handle: their values in edge order."""


def _live(cycle: Cycle, edge: EdgeSpec) -> bool:
    source = cycle.tasks[edge.source]
    return source.status == "completed" and edge.source_handle in (source.output_data or {})
