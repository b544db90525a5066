"""The flow scheduler's pure core: flows, cycles and tasks as plain state, no I/O, time passed in.

The process (``scheduler.py``) feeds it replies, ticks, events and commands, persists what it marks
dirty, and carries out the actions it returns (``Dispatch``, ``Preempt``, ``Cancel``). Every decision
lives here, so a hypothesis state machine can drive it (tests/unit/flows/test_core_machine.py).

Invariants: at most ``slots`` tasks hold a slot (dispatched, no answer yet); a flow holds at most
``max_concurrent``; a cycle exists at most once per ``(flow, trigger_key)`` (also a unique key in the
store); every task of a finished cycle is terminal.

The core is three layers, one idea each: ``state.py`` (the data and the actions), ``dispatch.py`` (queues,
slots, preemption, leases), ``progress.py`` (replies, edges, the end of a cycle); ``Core`` adds flows and
cycles (registration, ticks and overlap, stop, retry, restore).
"""

from __future__ import annotations

import os
from typing import Any

from tacore.flows.model import FlowSpec
from tacore.flows.progress import Progress
from tacore.flows.state import (
    MAX_MISSED_ROWS,
    ON_TIME_S,
    TERMINAL_CYCLE,
    TERMINAL_TASK,
    Action,
    Cancel,
    CoreError,
    Cycle,
    Dispatch,
    Flow,
    Graph,
    Preempt,
    Task,
    next_tick,
    request_id_for,
)

__all__ = ["TERMINAL_CYCLE", "TERMINAL_TASK", "Action", "Cancel", "Core", "CoreError", "Cycle", "Dispatch", "Flow",
           "Graph", "Preempt", "Task", "next_tick", "request_id_for"]


class Core(Progress):
    """The flow scheduler's decisions (see the module docstring)."""

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
        tasks, components, flow_id, number = cycle.tasks, flow.graph.components, flow.id, cycle.cycle
        priority, timeout_ms, retries = o.priority, o.timeout_ms, o.retries
        missing = [node for node in flow.spec.nodes if node.id not in tasks]
        ids = os.urandom(16 * len(missing)).hex()  # one call: this runs before a cycle's first request leaves
        for i, node in enumerate(missing):
            tasks[node.id] = Task(ids[32 * i:32 * i + 32], flow_id, number, node.id, components[node.id], node.type,
                                  priority, node.timeout_ms or timeout_ms,
                                  retries if node.retries is None else node.retries, created_at=now)
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
            # a stored cycle is re-run on the flow's current definition, which must hold exactly its nodes
            drift = _drift(cycle, flow)
            if drift:
                raise CoreError(f"cycle {number} of {flow_id!r} ran on another definition of the flow ({drift}): "
                                "run a new cycle instead")
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
    # -- restore -------------------------------------------------------------------------------------
    def restore_cycle(self, cycle: Cycle, now: float) -> list[Action]:
        """Take back an unfinished cycle after a restart: finished tasks stay, running ones are asked again
        with their request_id, queued ones are queued, pending ones wait for their inputs."""
        flow = self.flows[cycle.flow_id]
        if cycle.graph is None:
            # as a retry: the cycle goes on on the flow's current definition only if that still has its nodes
            # (a node added since is indistinguishable from a task whose row was not written yet: it runs)
            gone = sorted(set(cycle.tasks) - set(flow.graph.nodes))
            if gone:
                self._end_on_changed_definition(flow, cycle, gone, now)
                return []
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

    def _end_on_changed_definition(self, flow: Flow, cycle: Cycle, gone: list[str], now: float) -> None:
        """A restored cycle whose nodes left the flow's definition (replaced while it ran; the definition it
        started with is not kept): it cannot go on, so it ends ``cancelled``, saying why, its open tasks too."""
        why = (f"the flow's definition changed while this cycle ran (its nodes {', '.join(gone)} are no longer in "
               "it) and the scheduler restarted: it cannot go on on the new definition; ended (a retry is refused "
               "the same way: run a new cycle)")
        flow.next_cycle = max(flow.next_cycle, cycle.cycle + 1)
        self.keys.add((cycle.flow_id, cycle.trigger_key))
        for task in cycle.tasks.values():
            if not task.terminal:
                task.status, task.finished_at, task.error_message = "cancelled", now, why
                task.seq = -1
                self.dirty_tasks[task.id] = task
                self.logs.append((task.id, "WARNING", why, now))
        cycle.status, cycle.finished_at, cycle.error = "cancelled", now, why[:2000]
        cycle.remaining = 0
        self._mark(cycle)

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

    def _start_buffered(self, flow: Flow, now: float) -> None:
        if flow.buffered is not None and flow.status == "active" and not self.running_cycles(flow.id):
            trigger, key, scheduled_at = flow.buffered
            flow.buffered = None
            self.keys.discard((flow.id, key))
            self.trigger(flow.id, now, trigger, key, scheduled_at)


def _drift(cycle: Cycle, flow: Flow) -> str:
    """How a stored cycle's nodes differ from its flow's current definition ("" when they are the same)."""
    gone = sorted(set(cycle.tasks) - set(flow.graph.nodes))
    added = sorted(set(flow.graph.nodes) - set(cycle.tasks))
    parts = ([f"nodes no longer in the definition: {', '.join(gone)}"] if gone else []) + \
        ([f"nodes added since: {', '.join(added)}"] if added else [])
    return "; ".join(parts)
