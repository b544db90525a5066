"""A cycle's progress: replies (success, retry with backoff, failure), leases that ran out, outputs routed
along edges to the next nodes' inputs, skips, cancels, and the end of a cycle once every task is terminal.
"""

from __future__ import annotations

import heapq
from typing import Any

from tacore.flows.dispatch import Dispatcher
from tacore.flows.model import EdgeSpec
from tacore.flows.state import (
    BACKOFF_BASE_S,
    BACKOFF_MAX_S,
    MAX_RESENDS,
    RETRY_CODES,
    Action,
    Cancel,
    Cycle,
    Dispatch,
    Flow,
    Graph,
    Task,
)


class Progress(Dispatcher):
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
        if flow is not None and flow.buffered is not None:
            self._start_buffered(flow, now)

    def _mark(self, cycle: Cycle) -> None:
        self.dirty_cycles[(cycle.flow_id, cycle.cycle)] = cycle
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
    def _start_buffered(self, flow: Flow, now: float) -> None:
        """A cycle of ``flow`` ended while a tick waited (``buffer_one``): start it if it may run now."""
        raise NotImplementedError


class _Many(list[Any]):
    """Several edges into one input handle: their values in edge order."""


def _live(cycle: Cycle, edge: EdgeSpec) -> bool:
    source = cycle.tasks[edge.source]
    return source.status == "completed" and edge.source_handle in (source.output_data or {})
