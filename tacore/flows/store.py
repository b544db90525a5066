"""The flow engine's durable history in the service's database (the tables: ``tacore.flows.tables``, created by
the Alembic migration 0004). ``FlowStore`` is its one face: it takes a write-behind's rows (``flush``) and keeps
track of what is written, loads flows and open cycles on a restart, purges old cycles, and answers the
``flow.*`` reads (``tacore.flows.queries``); ``tacore.flows.writer`` is its writing thread.

The scheduler writes a new cycle before it sends any of its requests; what else its core marked dirty
(``flush``) goes behind, at most every 20 ms, as one batch of rows per flush that a writing thread puts in
the database in one transaction, batches in order (a cycle's end and its tasks' rows land together, so
no cycle ends with tasks still ``running``). A task's ``request_id`` is derived from stored fields, which
is what lets a restarted scheduler ask again for a task in flight whether or not its row was written. A
cycle is unique per ``(flow_id, cycle)`` and per ``(flow_id, trigger_key)``: a second scheduler, or a
restart racing the old process, cannot create a scheduled time twice (``flush`` returns the cycles refused).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Engine

from tacore.flows.core import Core, Cycle, Task
from tacore.flows.queries import HistoryQueries
from tacore.flows.rows import cycle_row, flow_row, insert_values, update_values
from tacore.flows.tables import flow_cycles, flows, metadata, task_logs, tasks
from tacore.flows.writer import Batch, HistoryWriter

__all__ = ["FlowStore", "metadata"]


class FlowStore(HistoryQueries):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # reads (the sidecar's and the handlers'), retention
        self._writer = HistoryWriter(engine)  # the writes: one thread, one kept-open connection
        self._flows: dict[str, int] = {}  # flow_id -> the version whose definition is written
        self._cycles: set[tuple[str, int]] = set()
        self._tasks: set[str] = set()
        self._finished: list[Cycle] = []  # finished cycles whose tasks wait for the next write

    @property
    def writer(self) -> Engine:
        """The engine of the writing thread's connection (``engine`` itself unless the database is SQLite)."""
        return self._writer.engine

    # -- writing (the scheduler's loop) ------------------------------------------------------------
    def close(self) -> None:
        """Write what was handed over, then let go of the database."""
        self._writer.close()
        self.engine.dispose()

    def flush(self, core: Core, now: float | None = None, *, tasks_too: bool = True,
              wait: bool = True) -> list[Cycle]:
        """Write what ``core`` marked dirty in one transaction; the new cycles the store refused (a
        duplicate ``(flow, trigger_key)`` or cycle number) come back, not written, for the caller to drop.
        ``tasks_too=False`` writes flows and new cycles only (before their first request) and leaves the
        rest (tasks, logs, the cycles written before) for the next write-behind.

        The rows are taken here; the writing thread (one connection, batches in order) writes them. New
        cycles are always written before this returns (the refusals are its answer); the rest too unless
        ``wait=False`` (the scheduler's loop: its write-behind then costs it the rows, not the database's
        time). A write that failed raises at the next call."""
        self._writer.check()
        if not (core.dirty_flows or core.dirty_cycles or (tasks_too and (core.dirty_tasks or core.logs))):
            if wait:
                self.wait()
            return []
        now = time.time() if now is None else now
        written = [k for k in core.dirty_cycles if k in self._cycles]
        new_cycles = [c for k, c in core.dirty_cycles.items() if k not in self._cycles]
        refused: list[Cycle] = []
        if new_cycles:
            refused = self._writer.insert_cycles(new_cycles, now, self._cycles)
        refused_keys = {(c.flow_id, c.cycle) for c in refused}
        dirty_flows = [core.flows[f] for f in core.dirty_flows if f in core.flows]
        # a new definition (or a flow this store has not written): the whole row; else its state only
        whole = [flow_row(f, now) for f in dirty_flows if self._flows.get(f.id) != f.version]
        state = [(f.status, f.next_cycle, f.next_run_at, f.last_tick, f.missed_total, now, f.id)
                 for f in dirty_flows if self._flows.get(f.id) == f.version]
        # an existing cycle's row goes with its tasks' rows, never before them (a cycle written as ended
        # with tasks still ``running`` in the store would leave them so after a kill -9)
        deferred = {} if tasks_too else {k: core.dirty_cycles[k] for k in written}
        old_cycles = [cycle_row(core.dirty_cycles[k], now) for k in written] if tasks_too else []
        dirty = [t for t in core.dirty_tasks.values() if (t.flow_id, t.cycle) not in refused_keys] \
            if tasks_too else []
        new_tasks = [t for t in dirty if t.id not in self._tasks]
        new_rows = [insert_values(t, now) for t in new_tasks]
        old_tasks = [update_values(t, now) for t in dirty if t.id in self._tasks]
        logs = [{"task_id": t, "level": level[:20], "message": message, "created_at": at}
                for t, level, message, at in core.logs] if tasks_too else []
        if whole or state or old_cycles or new_rows or old_tasks or logs:
            self._writer.submit(Batch(now, whole, state, old_cycles, new_rows, old_tasks, logs))
        self._flows.update((f.id, f.version) for f in dirty_flows)
        self._tasks.update(t.id for t in new_tasks)
        for key, cycle in core.dirty_cycles.items():
            if key in deferred:
                continue
            if cycle.terminal and tasks_too:  # never written again (a retry loads it anew)
                self._cycles.discard(key)
                self._tasks.difference_update(t.id for t in cycle.tasks.values())
            elif cycle.terminal:
                self._finished.append(cycle)  # forgotten once its tasks are written
        if tasks_too:
            for cycle in self._finished:
                self._cycles.discard((cycle.flow_id, cycle.cycle))
                self._tasks.difference_update(t.id for t in cycle.tasks.values())
            self._finished.clear()
            core.dirty_tasks.clear()
            core.logs.clear()
        core.dirty_flows.clear()
        core.dirty_cycles.clear()
        core.dirty_cycles.update(deferred)
        if wait:
            self.wait()
        return refused

    def wait(self) -> None:
        """Every batch handed to the writing thread so far is in the database (or its error raised here)."""
        self._writer.drain()
        self._writer.check()

    def drain(self) -> None:
        """Wait until every batch handed over so far is written, without looking at their outcome: safe from a
        thread that does not hold the caller's lock (a reader), while the loop hands over more; ``check``
        (under the lock) then raises a write that failed."""
        self._writer.drain()

    def check(self) -> None:
        """Raise the error of a batch that failed (called where ``flush`` is: under the engine's lock)."""
        self._writer.check()

    def unwritten(self, cycles: dict[tuple[str, int], Cycle]) -> list[Cycle]:
        """The cycles among ``cycles`` this store has not written yet (new ones)."""
        return [c for k, c in cycles.items() if k not in self._cycles]

    def forget_cycles(self, keys: Iterable[tuple[str, int]]) -> None:
        """Cycles dropped from memory (finished long ago) need not be tracked as written."""
        for key in keys:
            self._cycles.discard(key)

    def purge(self, older_than: float) -> int:
        """Retention: finished cycles (and their tasks and logs) that ended before ``older_than``."""
        with self.engine.begin() as conn:
            task_ids = select(tasks.c.id).join(flow_cycles, and_(
                tasks.c.flow_id == flow_cycles.c.flow_id, tasks.c.cycle == flow_cycles.c.cycle)).where(
                flow_cycles.c.finished_at < older_than)
            conn.execute(delete(task_logs).where(task_logs.c.task_id.in_(task_ids)))
            doomed = select(flow_cycles.c.flow_id, flow_cycles.c.cycle).where(flow_cycles.c.finished_at < older_than)
            pairs = list(conn.execute(doomed))
            for flow_id, cycle in pairs:
                conn.execute(delete(tasks).where(and_(tasks.c.flow_id == flow_id, tasks.c.cycle == cycle)))
            result = conn.execute(delete(flow_cycles).where(flow_cycles.c.finished_at < older_than))
        return int(result.rowcount or 0)

    # -- loading (a restart) ----------------------------------------------------------------------
    def load_flows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(flows))]
        self._flows.update((r["flow_id"], r["version"]) for r in rows)
        return rows

    def open_cycles(self) -> list[Cycle]:
        """Every unfinished cycle with its tasks, as the core holds them."""
        with self.engine.connect() as conn:
            cycle_rows = list(conn.execute(select(flow_cycles).where(
                flow_cycles.c.status.in_(["pending", "running"]))))
            out = []
            for row in cycle_rows:
                cycle = self._cycle(row._mapping, conn)
                out.append(cycle)
        return out

    def cycle(self, flow_id: str, number: int) -> Cycle | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(flow_cycles).where(and_(flow_cycles.c.flow_id == flow_id,
                                                              flow_cycles.c.cycle == number))).first()
            return None if row is None else self._cycle(row._mapping, conn)

    def _cycle(self, row: Any, conn: Any) -> Cycle:
        cycle = Cycle(row["flow_id"], row["cycle"], row["trigger"], row["trigger_key"], row["scheduled_at"],
                      status=row["status"], started_at=row["started_at"], finished_at=row["finished_at"],
                      error=row["error"], event=row["event"])
        for t in conn.execute(select(tasks).where(and_(tasks.c.flow_id == row["flow_id"],
                                                       tasks.c.cycle == row["cycle"]))):
            m = t._mapping
            task = Task(m["id"], m["flow_id"], m["cycle"], m["node_id"], m["component_id"], m["type"], m["priority"],
                        m["timeout_ms"], m["retries"], status=m["status"], attempt=m["attempt"],
                        preemptions=m["preemptions"], request_id=m["request_id"], input_data=m["input_data"],
                        output_data=m["output_data"], error_message=m["error_message"], worker=m["worker"],
                        created_at=m["created_at"], queued_at=m["queued_at"], started_at=m["started_at"],
                        finished_at=m["finished_at"])
            cycle.tasks[task.node_id] = task
            self._tasks.add(task.id)
        self._cycles.add((cycle.flow_id, cycle.cycle))
        return cycle

    def known_keys(self, flow_id: str, since: float) -> set[str]:
        """Trigger keys of the flow's cycles scheduled after ``since`` (so a restart never repeats one)."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(flow_cycles.c.trigger_key).where(and_(
                flow_cycles.c.flow_id == flow_id, flow_cycles.c.created_at >= since))).scalars())

