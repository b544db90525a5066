"""The core's capacity: priority queues with aging, the slots, ``max_concurrent``, preemption for priority 0,
and the leases of dispatched tasks. ``Dispatcher`` holds every piece of the core's state (``Progress`` and
``Core`` build on it); its methods decide what runs now and what makes room.
"""

from __future__ import annotations

import heapq
import random
from collections import deque

from tacore.flows.state import (
    LEASE_GRACE_S,
    MAX_EXTRA_PREEMPTIONS,
    PARKED,
    Action,
    Cycle,
    Dispatch,
    Flow,
    Preempt,
    Task,
    request_id_for,
)


class Dispatcher:
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
