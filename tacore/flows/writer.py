"""The history's writing thread: the scheduler's loop takes the rows of a write-behind (a ``Batch``) and hands
them over; one thread, with one kept-open connection, puts each batch in the database in one transaction,
batches in order. New cycles go through it too, but the loop waits for them (a refused cycle is its answer).
A batch that failed raises at the next ``check`` (or ``wait``) of the caller that holds the engine's lock.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, create_engine, event, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from tacore.flows.core import Cycle
from tacore.flows.rows import INSERT_FIELDS, UPDATE_FIELDS, cycle_row
from tacore.flows.tables import flow_cycles, flows, task_logs, tasks
from tacore.store.request_log import sqlite_path, sqlite_pragmas


def _sqlite_writer(engine: Engine) -> Engine:
    writer = create_engine(engine.url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    event.listen(writer, "connect", sqlite_pragmas)
    return writer


@dataclass(frozen=True)
class Batch:
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


class HistoryWriter:
    """The writing thread and its connection; ``engine`` is the store's (reads), whose URL it writes to."""

    def __init__(self, engine: Engine) -> None:
        self._path = sqlite_path(engine.url.render_as_string(hide_password=False))
        self._inode: int | None = None
        #: the writes: one connection kept open. The service's SQLite engine opens a file afresh per use, and
        #: closing the last connection to a WAL file checkpoints and fsyncs it (~5 ms, three times a cycle).
        self.engine = engine if self._path is None else _sqlite_writer(engine)
        # Task rows go to the driver directly (executemany with the driver's placeholders): SQLAlchemy's
        # per-row compilation cost more than the database's own work per node.
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_sql = (f"INSERT INTO tasks ({', '.join(INSERT_FIELDS)}) "
                            f"VALUES ({', '.join([mark] * len(INSERT_FIELDS))})")
        self._flow_state_sql = (f"UPDATE flows SET status = {mark}, next_cycle = {mark}, next_run_at = {mark}, "
                                f"last_tick = {mark}, missed_total = {mark}, updated_at = {mark} "
                                f"WHERE flow_id = {mark}")
        self._update_sql = (f"UPDATE tasks SET {', '.join(f'{name} = {mark}' for name in UPDATE_FIELDS)} "
                            f"WHERE id = {mark}")
        #: the writes, in order, on one thread: the scheduler's loop hands its batches over and goes on
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="flow-store")
        self._pending: list[Future[None]] = []

    # -- the caller's side (the scheduler's loop, a reader) ------------------------------------------
    def close(self) -> None:
        """Write what was handed over, raise a write that failed, then let go of the connection."""
        self._thread.shutdown(wait=True)
        self.check()
        self.engine.dispose()

    def submit(self, batch: Batch) -> None:
        """Hand a batch over to be written after those before it (its failure raises at a later ``check``)."""
        self._pending.append(self._thread.submit(self._write_batch, batch))

    def insert_cycles(self, cycles: list[Cycle], now: float, written: set[tuple[str, int]]) -> list[Cycle]:
        """Write new cycles, after the batches handed over before them, and wait: the cycles refused (a
        duplicate ``(flow, trigger_key)`` or cycle number) come back; the others are added to ``written``
        (the store's record of the cycles it wrote) in the writing thread, as each is committed."""
        return self._thread.submit(self._insert_cycles, cycles, now, written).result()

    def drain(self) -> None:
        """Wait until every batch handed over so far is written, without looking at their outcome: safe from a
        thread that does not hold the caller's lock (a reader), while the loop hands over more; ``check``
        (under the lock) then raises a write that failed."""
        self._thread.submit(_nothing).result()

    def check(self) -> None:
        """Raise the error of a batch that failed (called where ``flush`` is: under the engine's lock)."""
        if not self._pending:
            return
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            exc = future.exception()
            if exc is not None:
                raise exc

    # -- the writing thread ---------------------------------------------------------------------------
    def _write(self) -> Engine:
        """The writer, reopened when its SQLite file was deleted or replaced (it would write into the void)."""
        if self._path is not None:
            try:
                inode: int | None = self._path.stat().st_ino
            except OSError:
                inode = None
            if inode != self._inode:
                self.engine.dispose()
                self._inode = inode
        return self.engine

    def _write_batch(self, batch: Batch) -> None:
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

    def _insert_cycles(self, cycles: list[Cycle], now: float, written: set[tuple[str, int]]) -> list[Cycle]:
        rows = [{**cycle_row(c, now), "created_at": now} for c in cycles]
        writer = self._write()
        try:
            with writer.begin() as conn:
                conn.execute(insert(flow_cycles), rows)
            written.update((c.flow_id, c.cycle) for c in cycles)
            return []
        except IntegrityError:
            pass
        refused = []
        for cycle, row in zip(cycles, rows, strict=True):  # one by one, to find the duplicates
            try:
                with writer.begin() as conn:
                    conn.execute(insert(flow_cycles), [row])
                written.add((cycle.flow_id, cycle.cycle))
            except IntegrityError:
                refused.append(cycle)
        return refused
