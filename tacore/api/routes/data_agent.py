"""The seed's Data Agent HTTP API, forwarded to the data agent through the broker.

Same paths, bodies and reply shapes as the seed's command server (``/connections/count``,
``/streams/add``...), but each is one broker call to a ``kline.*`` method, so the data agent needs
no HTTP server of its own and every command lands in the request log. ``/ping`` (open, like
``/health``) answers from the sampler's view of the broker, without a round trip.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError

from clients import RemoteError
from tacore.api.broker_link import BrokerLink, Sampler
from tacore.api.deps import LinkDep, SamplerDep
from tacore.api.errors import ComponentUnavailable
from tacore.api.schemas import (
    AddSymbolsReply,
    AgentStatus,
    CommandReply,
    ConnectionCount,
    ConnectionList,
    Pong,
    Problem,
    StreamBody,
    SymbolList,
    SymbolsBody,
)
from tacore.api.security import require_key, require_key_for_write

open_router = APIRouter(tags=["data agent"])
read_router = APIRouter(tags=["data agent"], dependencies=[Depends(require_key)])
write_router = APIRouter(tags=["data agent"], dependencies=[Depends(require_key_for_write)], responses={
    400: {"model": Problem, "description": "the body is not JSON"},
    502: {"model": Problem, "description": "the data agent failed on the command (INTERNAL)"},
})

_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "the broker or the data agent is down"},
}
_READ_TIMEOUT_MS = 5_000
_UNAVAILABLE_CODES = {"UNKNOWN_METHOD", "UNAVAILABLE", "TIMEOUT", "BUSY", "WORKER_LOST"}


def _require_agent(sampler: Sampler) -> None:
    agent = sampler.data_agent()
    if agent["configured"] is None:
        sampler.require_status()  # raises the broker's 503
    if not agent["up"]:
        raise ComponentUnavailable("data_agent", "the data agent is not running: no worker serves the kline "
                                   "methods (start it with `tacore serve` or `tacore data-agent`)")


async def forward(link: BrokerLink, sampler: Sampler, method: str, params: dict[str, Any],
                  timeout_ms: float = _READ_TIMEOUT_MS, where: str = "body") -> dict[str, Any]:
    """One call to the data agent; its error codes become 422 (bad input, located in ``where``: the body or
    the query), 503 (down) or 502."""
    _require_agent(sampler)
    try:
        data = await link.call(method, params, timeout_ms=timeout_ms, priority=3)
    except RemoteError as exc:
        if exc.code == "INVALID_PARAMS":
            details = exc.details if isinstance(exc.details, list) else [{"message": exc.message}]
            raise RequestValidationError([
                {"type": "value_error", "loc": (where, str(d.get("field") or "")) if isinstance(d, dict)
                 else (where,), "msg": str(d.get("message") if isinstance(d, dict) else d), "input": None}
                for d in details
            ]) from None
        if exc.code in _UNAVAILABLE_CODES:
            raise ComponentUnavailable("data_agent", f"the data agent could not answer {method}: "
                                       f"{exc.code}: {exc.message}") from None
        raise ComponentUnavailable("data_agent", f"the data agent failed on {method}: {exc.code}: {exc.message}",
                                   status_code=502) from None
    if not isinstance(data, dict):
        raise ComponentUnavailable("data_agent", f"{method} answered {type(data).__name__}, not an object",
                                   status_code=502)
    return data


@open_router.get("/ping", response_model=Pong, responses=_DOWN, summary="Data agent liveness (no key needed)")
async def ping(sampler: SamplerDep) -> Pong:
    _require_agent(sampler)
    return Pong(status="ok", message="pong")


@read_router.get("/connections/count", response_model=ConnectionCount, responses=_DOWN)
async def connection_count(link: LinkDep,
                           sampler: SamplerDep) -> ConnectionCount:
    data = await forward(link, sampler, "kline.connections", {})
    count = data.get("connection_count", data.get("count", len(data.get("connections", []))))
    return ConnectionCount(connection_count=int(count))


@read_router.get("/connections/list", response_model=ConnectionList, responses=_DOWN)
async def connection_list(link: LinkDep,
                          sampler: SamplerDep) -> ConnectionList:
    data = await forward(link, sampler, "kline.connections", {})
    connections = list(data.get("connections", []))
    return ConnectionList(**{**data, "connections": connections, "count": int(data.get("count", len(connections)))})


@read_router.get("/symbols", response_model=SymbolList, responses=_DOWN)
async def symbols(link: LinkDep, sampler: SamplerDep) -> SymbolList:
    data = await forward(link, sampler, "kline.symbols", {})
    names = [str(s) for s in data.get("symbols", [])]
    return SymbolList(**{**data, "symbols": names, "count": int(data.get("count", len(names)))})


@read_router.get("/status", response_model=AgentStatus, responses=_DOWN)
async def agent_status(link: LinkDep, sampler: SamplerDep) -> AgentStatus:
    data = await forward(link, sampler, "kline.status", {})
    return AgentStatus(**{"status": "ok", "connection_count": 0, "symbols": [], **data})


@write_router.post("/streams/add", response_model=CommandReply, responses=_DOWN, summary="Add one kline stream")
async def add_stream(body: StreamBody, link: LinkDep,
                     sampler: SamplerDep) -> CommandReply:
    data = await forward(link, sampler, "kline.add_stream", body.model_dump(), timeout_ms=30_000)
    return CommandReply(**{"status": "ok", **data})


@write_router.post("/streams/remove", response_model=CommandReply, responses=_DOWN,
                   summary="Remove one kline stream")
async def remove_stream(body: StreamBody, link: LinkDep,
                        sampler: SamplerDep) -> CommandReply:
    data = await forward(link, sampler, "kline.remove_stream", body.model_dump(), timeout_ms=10_000)
    return CommandReply(**{"status": "ok", **data})


@write_router.post("/symbols/add", response_model=AddSymbolsReply, responses=_DOWN,
                   summary="Subscribe symbols on every interval")
async def add_symbols(body: SymbolsBody, link: LinkDep,
                      sampler: SamplerDep) -> AddSymbolsReply:
    data = await forward(link, sampler, "kline.add_symbols", body.model_dump(),
                         timeout_ms=min(120_000, 30_000 * len(body.symbols)))
    return AddSymbolsReply(**{"results": [], "current_status": {}, "summary": {}, **data})
