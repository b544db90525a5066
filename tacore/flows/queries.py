"""The history's reads behind the ``flow.*`` methods (the sidecar's and the handlers'): flows, a flow's cycles
and their counts, a cycle's tasks, a node's recent tasks, task logs. Plain queries on the store's engine, none
of the writing side's bookkeeping; ``FlowStore`` has them as its own methods.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from tacore.flows.tables import flow_cycles, flows, task_logs, tasks


class HistoryQueries:
    """The ``flow.*`` reads, on ``engine`` (set by the class that has them: ``FlowStore``)."""

    engine: Engine

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
