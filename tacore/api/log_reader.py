"""Reads of the request log (SQLAlchemy 2 Core): the filtered, paged ``GET /logs`` and the recent errors.

The recorder is the only writer; these are plain indexed reads, run in a thread so a slow disk never
blocks the sidecar's event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, select, text
from sqlalchemy.engine import Engine

from tacore.store.request_log import request_log

COLUMNS = (
    "id", "request_id", "method", "status", "error_code", "worker_id", "priority",
    "queue_ms", "processing_ms", "total_ms", "received_at", "finished_at", "internal", "params", "error_message",
)
_SELECT = [request_log.c[name] for name in COLUMNS]


@dataclass(frozen=True, slots=True)
class LogFilter:
    """The filters of ``GET /logs``; None means "any". Times are epoch seconds on ``received_at``."""

    method: str | None = None
    status: str | None = None
    error_code: str | None = None
    request_id: str | None = None
    worker_id: str | None = None
    since: float | None = None
    until: float | None = None
    internal: bool | None = None  # False: user traffic only; True: TACore's own calls only

    def clauses(self) -> list[ColumnElement[bool]]:
        c = request_log.c
        clauses: list[ColumnElement[bool]] = []
        if self.method is not None:
            clauses.append(c.method == self.method)
        if self.status is not None:
            clauses.append(c.status == self.status)
        if self.error_code is not None:
            clauses.append(c.error_code == self.error_code)
        if self.request_id is not None:
            clauses.append(c.request_id == self.request_id)
        if self.worker_id is not None:
            clauses.append(c.worker_id == self.worker_id)
        if self.since is not None:
            clauses.append(c.received_at >= self.since)
        if self.until is not None:
            clauses.append(c.received_at <= self.until)
        if self.internal is not None:
            clauses.append(c.internal.is_(self.internal))
        return clauses


def read_page(engine: Engine, flt: LogFilter, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """Matching rows newest first (by receipt, then id), and how many match in all."""
    where = and_(*flt.clauses()) if flt.clauses() else None
    count_q = select(func.count()).select_from(request_log)
    rows_q = select(*_SELECT).order_by(request_log.c.received_at.desc(), request_log.c.id.desc())
    if where is not None:
        count_q = count_q.where(where)
        rows_q = rows_q.where(where)
    rows_q = rows_q.limit(limit).offset(offset)
    with engine.connect() as conn:
        total = int(conn.execute(count_q).scalar_one())
        rows = [dict(row._mapping) for row in conn.execute(rows_q)] if offset < total else []
    return total, rows


def max_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(request_log.c.id))).scalar() or 0)


def errors_between(engine: Engine, after_id: int, upto_id: int, limit: int) -> list[dict[str, Any]]:
    """Users' error rows with ``after_id < id <= upto_id``, newest first: an incremental scan on the primary
    key (TACore's own calls failing, e.g. the sidecar's polls while the data agent restarts, are not shown)."""
    c = request_log.c
    query = (select(*_SELECT).where(c.id > after_id, c.id <= upto_id, c.status == "error", c.internal.is_(False))
             .order_by(c.id.desc()).limit(limit))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def shape_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as the API shows them (rounded times, no internal surprises)."""
    out = []
    for row in rows:
        item = dict(row)
        for key in ("queue_ms", "processing_ms", "total_ms"):
            item[key] = round(float(item[key]), 3)
        for key in ("received_at", "finished_at"):
            item[key] = round(float(item[key]), 6)
        item["internal"] = bool(item.get("internal", False))
        item["params"] = _json(item.get("params"))
        out.append(item)
    return out


def _json(value: Any) -> Any:
    """The params column's JSON as a value (None for rows from before it was kept)."""
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return {"_unreadable": str(value)[:200]}
