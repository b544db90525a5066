"""The flow engine's durable history in the service's database: ``flows``, ``flow_cycles``, ``tasks``
(the Tradefree document's columns plus flow, cycle, node, component, attempt, worker, priority, timings)
and ``task_logs``. Created by the Alembic migration 0004 (``tacore/store/migrations``).

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from tacore.flows.core import Core, Cycle, Flow, Task
from tacore.store.request_log import sqlite_path, sqlite_pragmas

metadata = MetaData()

flows = Table(
    "flows", metadata,
    Column("flow_id", String(128), primary_key=True),
    Column("name", String(256), nullable=True),
    Column("status", String(16), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("next_cycle", Integer, nullable=False),
    Column("next_run_at", Float, nullable=True),
    Column("last_tick", Float, nullable=True),
    Column("missed_total", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

flow_cycles = Table(
    "flow_cycles", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_id", String(128), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("trigger_key", String(160), nullable=False),
    Column("scheduled_at", Float, nullable=True),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("event", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("flow_id", "cycle", name="uq_flow_cycles_flow_cycle"),
    UniqueConstraint("flow_id", "trigger_key", name="uq_flow_cycles_flow_trigger"),
    Index("ix_flow_cycles_status", "status"),
    Index("ix_flow_cycles_created_at", "created_at"),
)

tasks = Table(
    "tasks", metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("input_data", JSON, nullable=True),
    Column("output_data", JSON, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("flow_id", String(128), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("node_id", String(128), nullable=False),
    Column("component_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("preemptions", Integer, nullable=False),
    Column("worker", String(128), nullable=True),
    Column("priority", Integer, nullable=False),
    Column("request_id", String(256), nullable=True),
    Column("timeout_ms", Integer, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("queued_at", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    UniqueConstraint("flow_id", "cycle", "node_id", name="uq_tasks_flow_cycle_node"),
    Index("ix_tasks_status", "status"),
    Index("ix_tasks_created_at", "created_at"),
    Index("ix_tasks_node", "node_id", "created_at"),
)

task_logs = Table(
    "task_logs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(36), nullable=False),
    Column("level", String(20), nullable=False),
    Column("message", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_task_logs_task_id", "task_id"),
    Index("ix_task_logs_created_at", "created_at"),
)

_TASK_FIELDS = ("type", "status", "input_data", "output_data", "error_message", "flow_id", "cycle", "node_id",
                "attempt", "preemptions", "worker", "priority", "request_id", "timeout_ms", "retries", "queued_at",
                "started_at", "finished_at")


_INSERT_FIELDS = ("id", *_TASK_FIELDS, "component_id", "created_at", "updated_at")
_UPDATE_FIELDS = (*_TASK_FIELDS, "updated_at")


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _shared(task: Task) -> tuple[Any, ...]:
    """The ``_TASK_FIELDS`` of a task, in order (written out: this runs once per task row)."""
    return (task.type, task.status, _json(task.input_data), _json(task.output_data), task.error_message,
            task.flow_id, task.cycle, task.node_id, task.attempt, task.preemptions, task.worker, task.priority,
            task.request_id, task.timeout_ms, task.retries, task.queued_at, task.started_at, task.finished_at)


def _insert_values(task: Task, now: float) -> tuple[Any, ...]:
    return (task.id, *_shared(task), task.component, task.created_at or now, now)


def _update_values(task: Task, now: float) -> tuple[Any, ...]:
    return (*_shared(task), now, task.id)


def _cycle_row(cycle: Cycle, now: float) -> dict[str, Any]:
    return {"flow_id": cycle.flow_id, "cycle": cycle.cycle, "trigger": cycle.trigger,
            "trigger_key": cycle.trigger_key, "scheduled_at": cycle.scheduled_at, "status": cycle.status,
            "started_at": cycle.started_at, "finished_at": cycle.finished_at, "error": cycle.error,
            "event": cycle.event, "updated_at": now}


def _flow_row(flow: Flow, now: float) -> dict[str, Any]:
    spec = flow.spec
    return {"flow_id": flow.id, "name": spec.options.name, "status": flow.status, "definition": spec.definition(),
            "priority": spec.options.priority, "trigger": spec.trigger, "next_cycle": flow.next_cycle,
            "next_run_at": flow.next_run_at, "last_tick": flow.last_tick, "missed_total": flow.missed_total,
            "version": flow.version, "updated_at": now}


def _sqlite_writer(engine: Engine) -> Engine:
    writer = create_engine(engine.url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    event.listen(writer, "connect", sqlite_pragmas)
    return writer


@dataclass(frozen=True)
class _Batch:
    """One write-behind's rows, taken in the loop's thread (the core changes its objects afterwards)."""

    now: float
    whole: list[dict[str, Any]]
    state: list[tuple[Any, ...]]
    old_cycles: list[dict[str, Any]]
    new_tasks: list[tuple[Any, ...]]
    old_tasks: list[tuple[Any, ...]]
    logs: list[dict[str, Any]]


def _nothing() -> None:
    return None


class FlowStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # reads (the sidecar's and the handlers'), retention
        self._path = sqlite_path(engine.url.render_as_string(hide_password=False))
        self._inode: int | None = None
        #: the writes: one connection kept open. The service's SQLite engine opens a file afresh per use, and
        #: closing the last connection to a WAL file checkpoints and fsyncs it (~5 ms, three times a cycle).
        self.writer = engine if self._path is None else _sqlite_writer(engine)
        # Task rows go to the driver directly (executemany with the driver's placeholders): SQLAlchemy's
        # per-row compilation cost more than the database's own work per node.
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_sql = (f"INSERT INTO tasks ({', '.join(_INSERT_FIELDS)}) "
                            f"VALUES ({', '.join([mark] * len(_INSERT_FIELDS))})")
        self._flow_state_sql = (f"UPDATE flows SET status = {mark}, next_cycle = {mark}, next_run_at = {mark}, "
                                f"last_tick = {mark}, missed_total = {mark}, updated_at = {mark} "
                                f"WHERE flow_id = {mark}")
        self._update_sql = (f"UPDATE tasks SET {', '.join(f'{name} = {mark}' for name in _UPDATE_FIELDS)} "
                            f"WHERE id = {mark}")
        self._flows: dict[str, int] = {}  # flow_id -> the version whose definition is written
        self._cycles: set[tuple[str, int]] = set()
        self._tasks: set[str] = set()
        self._finished: list[Cycle] = []  # finished cycles whose tasks wait for the next write
        #: the writes, in order, on one thread: the scheduler's loop hands its batches over and goes on
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="flow-store")
        self._pending: list[Future[None]] = []

    # -- writing (the scheduler's loop) ------------------------------------------------------------
    def close(self) -> None:
        """Write what was handed over, then let go of the database."""
        self._writer_thread.shutdown(wait=True)
        self._raise_failed()
        self.writer.dispose()
        self.engine.dispose()

    def _write(self) -> Engine:
        """The writer, reopened when its SQLite file was deleted or replaced (it would write into the void)."""
        if self._path is not None:
            try:
                inode: int | None = self._path.stat().st_ino
            except OSError:
                inode = None
            if inode != self._inode:
                self.writer.dispose()
                self._inode = inode
        return self.writer

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
        self._raise_failed()
        if not (core.dirty_flows or core.dirty_cycles or (tasks_too and (core.dirty_tasks or core.logs))):
            if wait:
                self.wait()
            return []
        now = time.time() if now is None else now
        written = [k for k in core.dirty_cycles if k in self._cycles]
        new_cycles = [c for k, c in core.dirty_cycles.items() if k not in self._cycles]
        refused: list[Cycle] = []
        if new_cycles:
            refused = self._writer_thread.submit(self._insert_cycles, new_cycles, now).result()
        refused_keys = {(c.flow_id, c.cycle) for c in refused}
        dirty_flows = [core.flows[f] for f in core.dirty_flows if f in core.flows]
        # a new definition (or a flow this store has not written): the whole row; else its state only
        whole = [_flow_row(f, now) for f in dirty_flows if self._flows.get(f.id) != f.version]
        state = [(f.status, f.next_cycle, f.next_run_at, f.last_tick, f.missed_total, now, f.id)
                 for f in dirty_flows if self._flows.get(f.id) == f.version]
        # an existing cycle's row goes with its tasks' rows, never before them (a cycle written as ended
        # with tasks still ``running`` in the store would leave them so after a kill -9)
        deferred = {} if tasks_too else {k: core.dirty_cycles[k] for k in written}
        old_cycles = [_cycle_row(core.dirty_cycles[k], now) for k in written] if tasks_too else []
        dirty = [t for t in core.dirty_tasks.values() if (t.flow_id, t.cycle) not in refused_keys] \
            if tasks_too else []
        new_tasks = [t for t in dirty if t.id not in self._tasks]
        new_rows = [_insert_values(t, now) for t in new_tasks]
        old_tasks = [_update_values(t, now) for t in dirty if t.id in self._tasks]
        logs = [{"task_id": t, "level": level[:20], "message": message, "created_at": at}
                for t, level, message, at in core.logs] if tasks_too else []
        if whole or state or old_cycles or new_rows or old_tasks or logs:
            self._pending.append(self._writer_thread.submit(
                self._write_batch, _Batch(now, whole, state, old_cycles, new_rows, old_tasks, logs)))
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
        self.drain()
        self._raise_failed()

    def drain(self) -> None:
        """Wait until every batch handed over so far is written, without looking at their outcome: safe from a
        thread that does not hold the caller's lock (a reader), while the loop hands over more; ``check``
        (under the lock) then raises a write that failed."""
        self._writer_thread.submit(_nothing).result()

    def check(self) -> None:
        """Raise the error of a batch that failed (called where ``flush`` is: under the engine's lock)."""
        self._raise_failed()

    def _raise_failed(self) -> None:
        if not self._pending:
            return
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            exc = future.exception()
            if exc is not None:
                raise exc

    def _write_batch(self, batch: _Batch) -> None:
        """One transaction (in the writing thread): flows, cycles that exist, tasks, logs."""
        now = batch.now
        with self._write().begin() as conn:
            if batch.whole:
                existing = set(conn.execute(select(flows.c.flow_id).where(
                    flows.c.flow_id.in_([r["flow_id"] for r in batch.whole]))).scalars())
                inserts = [{**r, "created_at": now} for r in batch.whole if r["flow_id"] not in existing]
                updates = [{**r, "b_flow_id": r["flow_id"]} for r in batch.whole if r["flow_id"] in existing]
                if inserts:
                    conn.execute(insert(flows), inserts)
                if updates:
                    conn.execute(update(flows).where(flows.c.flow_id == bindparam("b_flow_id")), updates)
            if batch.state:
                conn.exec_driver_sql(self._flow_state_sql, batch.state)
            if batch.old_cycles:
                conn.execute(update(flow_cycles).where(and_(flow_cycles.c.flow_id == bindparam("b_flow_id"),
                                                            flow_cycles.c.cycle == bindparam("b_cycle"))),
                             [{**r, "b_flow_id": r["flow_id"], "b_cycle": r["cycle"]} for r in batch.old_cycles])
            if batch.new_tasks:
                try:
                    with conn.begin_nested():
                        conn.exec_driver_sql(self._insert_sql, batch.new_tasks)
                except IntegrityError:
                    self._insert_or_update(conn, batch.new_tasks)
            if batch.old_tasks:
                conn.exec_driver_sql(self._update_sql, batch.old_tasks)
            if batch.logs:
                conn.execute(insert(task_logs), batch.logs)

    def _insert_or_update(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        """The rare batch where a "new" task's row exists already. The store forgets the tasks of ended
        cycles (its memory stays bounded), so a task of such a cycle that changes again comes back as new;
        schemathesis's stateful run over the flow routes once met that as an IntegrityError (the path is
        not pinned down: a retry reads its cycle back from the store, a late reply to a stopped node is
        ignored). Rows that exist are updated by id, the others inserted, in the same transaction."""
        ids = [row[0] for row in rows]
        existing = set(conn.execute(select(tasks.c.id).where(tasks.c.id.in_(ids))).scalars())
        fresh = [row for row in rows if row[0] not in existing]
        if fresh:
            conn.exec_driver_sql(self._insert_sql, fresh)
        # an insert row is (id, *shared fields, component, created_at, updated_at); an update (*shared, updated_at, id)
        again = [(*row[1:-3], row[-1], row[0]) for row in rows if row[0] in existing]
        if again:
            conn.exec_driver_sql(self._update_sql, again)

    def _insert_cycles(self, cycles: list[Cycle], now: float) -> list[Cycle]:
        rows = [{**_cycle_row(c, now), "created_at": now} for c in cycles]
        writer = self._write()
        try:
            with writer.begin() as conn:
                conn.execute(insert(flow_cycles), rows)
            self._cycles.update((c.flow_id, c.cycle) for c in cycles)
            return []
        except IntegrityError:
            pass
        refused = []
        for cycle, row in zip(cycles, rows, strict=True):  # one by one, to find the duplicates
            try:
                with writer.begin() as conn:
                    conn.execute(insert(flow_cycles), [row])
                self._cycles.add((cycle.flow_id, cycle.cycle))
            except IntegrityError:
                refused.append(cycle)
        return refused

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

    # -- reading (flow.* methods) -------------------------------------------------------------------
    def flow_rows(self, status: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        with self.engine.connect() as conn:
            query = select(flows)
            count = select(func.count()).select_from(flows)
            if status:
                query, count = query.where(flows.c.status == status), count.where(flows.c.status == status)
            rows = [dict(r._mapping) for r in conn.execute(query.order_by(flows.c.flow_id).limit(limit)
                                                           .offset(offset))]
            return rows, int(conn.execute(count).scalar_one())

    def cycle_rows(self, flow_id: str, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            query = select(flow_cycles).where(flow_cycles.c.flow_id == flow_id)
            if before is not None:
                query = query.where(flow_cycles.c.cycle < before)
            return [dict(r._mapping) for r in conn.execute(query.order_by(flow_cycles.c.cycle.desc()).limit(limit))]

    def cycle_counts(self, flow_id: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(select(flow_cycles.c.status, func.count()).where(
                flow_cycles.c.flow_id == flow_id).group_by(flow_cycles.c.status))}

    def task_rows(self, flow_id: str, cycle: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(tasks).where(and_(
                tasks.c.flow_id == flow_id, tasks.c.cycle == cycle)).order_by(tasks.c.created_at, tasks.c.node_id))]

    def task_counts(self, flow_id: str, cycles: list[int]) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = {}
        if not cycles:
            return out
        with self.engine.connect() as conn:
            for cycle, status, n in conn.execute(select(tasks.c.cycle, tasks.c.status, func.count()).where(and_(
                    tasks.c.flow_id == flow_id, tasks.c.cycle.in_(cycles))).group_by(tasks.c.cycle, tasks.c.status)):
                out.setdefault(int(cycle), {})[status] = int(n)
        return out

    def node_rows(self, node_id: str, flow_id: str | None, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            query = select(tasks).where(tasks.c.node_id == node_id)
            if flow_id is not None:
                query = query.where(tasks.c.flow_id == flow_id)
            return [dict(r._mapping) for r in conn.execute(query.order_by(tasks.c.created_at.desc()).limit(limit))]

    def log_rows(self, flow_id: str, cycle: int | None, node_id: str | None, task_id: str | None, after_id: int,
                 limit: int) -> list[dict[str, Any]]:
        query = (select(task_logs.c.id, task_logs.c.task_id, tasks.c.node_id, tasks.c.cycle, task_logs.c.level,
                        task_logs.c.message, task_logs.c.created_at)
                 .join(tasks, tasks.c.id == task_logs.c.task_id)
                 .where(and_(tasks.c.flow_id == flow_id, task_logs.c.id > after_id)))
        if cycle is not None:
            query = query.where(tasks.c.cycle == cycle)
        if node_id is not None:
            query = query.where(tasks.c.node_id == node_id)
        if task_id is not None:
            query = query.where(task_logs.c.task_id == task_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(task_logs.c.id).limit(limit))]
