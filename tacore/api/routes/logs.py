"""``GET /logs``: the request log, newest first, filtered and paged, with the total that matches."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BeforeValidator, WithJsonSchema

from tacore.api import log_reader
from tacore.api.deps import EngineDep
from tacore.api.schemas import LogEntry, LogPage, Problem
from tacore.errors import ErrorCode

router = APIRouter(tags=["logs"])

MAX_LIMIT = 1000

#: The last second a datetime holds (9999-12-31T23:59:59Z).
MAX_EPOCH_S = 253_402_300_799


def _epoch_or_iso(value: Any) -> Any:
    """A number (or a numeric string) is epoch seconds, checked against the range a datetime holds; anything
    else goes to pydantic's ISO 8601 parsing."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        return value
    if not (math.isfinite(number) and 0 <= number <= MAX_EPOCH_S):
        raise ValueError(f"epoch seconds must be from 0 to {MAX_EPOCH_S}")
    return datetime.fromtimestamp(number, UTC)


TimeParam = Annotated[
    datetime | None,
    BeforeValidator(_epoch_or_iso),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_EPOCH_S},
                              {"type": "string", "format": "date-time"}, {"type": "null"}]}),
    Query(description="epoch seconds or ISO 8601 (a time without zone is UTC); bounds received_at"),
]


def to_epoch(value: datetime | None) -> float | None:
    """Epoch seconds; a naive time is taken as UTC (the log stores UTC epoch seconds)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


#: whose requests ``GET /logs`` lists: users' (the default), TACore's own calls, or both
Origin = Literal["user", "internal", "all"]
_ORIGIN_FILTER: dict[str, bool | None] = {"user": False, "internal": True, "all": None}


def build_filter(method: str | None, status: str | None, error_code: ErrorCode | None, request_id: str | None,
                 worker_id: str | None, since: datetime | None, until: datetime | None,
                 origin: Origin = "user") -> log_reader.LogFilter:
    """The filter (``since`` after ``until`` is an empty range: no rows, not an error)."""
    since_s, until_s = to_epoch(since), to_epoch(until)
    return log_reader.LogFilter(method=method, status=status,
                                error_code=None if error_code is None else str(error_code),
                                request_id=request_id, worker_id=worker_id, since=since_s, until=until_s,
                                internal=_ORIGIN_FILTER[origin])


@router.get("/logs", response_model=LogPage, responses={503: {"model": Problem}},
            summary="Request log, newest first")
async def logs(
    engine: EngineDep,
    method: Annotated[str | None, Query(min_length=1, max_length=128, description="exact method name")] = None,
    status: Annotated[Literal["success", "error"] | None, Query()] = None,
    error_code: Annotated[ErrorCode | None, Query(description="one of the protocol's error codes")] = None,
    request_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    worker_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since: TimeParam = None,
    until: TimeParam = None,
    origin: Annotated[Origin, Query(description="user requests (default), TACore's own calls (internal: the "
                                                "sidecar's polling, the scheduler's), or all")] = "user",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> LogPage:
    flt = build_filter(method, status, error_code, request_id, worker_id, since, until, origin)
    total, rows = await asyncio.to_thread(log_reader.read_page, engine, flt, limit, offset)
    items = [LogEntry(**row) for row in log_reader.shape_rows(rows)]
    return LogPage(total=total, limit=limit, offset=offset, items=items)
