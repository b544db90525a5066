"""The TradingFlow document's HTTP API (flows, cycles, nodes, stats), each route one broker call.

``flow.*``, ``node.status`` and ``node.stop`` are served by the flow scheduler, ``node.execute`` by the pool
workers (docs/flows.md section 4 maps every path to its method). The routes stay thin: they check types and
ranges, forward the body as the client wrote it, and pass the reply's ``data`` on unchanged (its documented
shape is in ``flow_schemas``). Reads take the key from the header or the dashboard's cookie; commands (run,
stop, start a cycle, execute a node) take the header only.

Errors: a definition the scheduler refuses is a 422 whose ``detail`` lists every problem with its JSON
pointer (``loc`` and ``pointer``); an unknown flow, cycle or node a 404; stopping a cycle (or one of its
components) that already ended a 409; the scheduler (or the pool) down, busy
or too slow a 503; any other failure (a node that raised, say) a 502. A body that is not JSON is a 400.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from clients import RemoteError
from tacore.api.broker_link import BrokerLink, Sampler
from tacore.api.deps import LinkDep, SamplerDep, SettingsDep
from tacore.api.errors import ComponentUnavailable
from tacore.api.flow_schemas import (
    ID_PATTERN,
    MAX_CYCLE,
    CycleBody,
    CycleDetail,
    CycleList,
    CycleStarted,
    CycleSummary,
    FlowDefinition,
    FlowList,
    FlowRunReply,
    FlowStats,
    FlowStatus,
    LogList,
    NodeExecuteBody,
    NodeExecuteReply,
    NodeStatusReply,
    NodeStopBody,
    NodeStopReply,
    NodeTypes,
    StopBody,
    StopReply,
)
from tacore.api.schemas import Problem
from tacore.api.security import require_key, require_key_for_write

SCHEDULER = "flow_scheduler"
_COMMON: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "API key missing or wrong (when `API_KEY` is set)"},
    422: {"description": "invalid input; for a flow definition `detail` lists every problem with its JSON "
                         "`pointer` (`loc` too)"},
    502: {"model": Problem, "description": "the scheduler (or the node) failed on the call"},
    503: {"model": Problem, "description": "the broker or the flow scheduler is down, busy or too slow"},
}
_WRITE: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    400: {"model": Problem, "description": "the body is not JSON"},
}
_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such flow, cycle or node"}}
_ENDED: dict[int | str, dict[str, Any]] = {
    **_FOUND, 409: {"model": Problem, "description": "the cycle already ended: nothing to stop"}}
_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "the body is over the broker's request limit (MAX_REQUEST_BYTES)"},
}
_ENVELOPE_BYTES = 512  # request_id, method, priority, deadline around the params

read_router = APIRouter(tags=["flows"], dependencies=[Depends(require_key)], responses=_COMMON)
write_router = APIRouter(tags=["flows"], dependencies=[Depends(require_key_for_write)], responses=_WRITE)

_READ_TIMEOUT_MS = 5_000
_WRITE_TIMEOUT_MS = 10_000
_NODE_TIMEOUT_MS = 30_000  # a node past this is answered 503 (TIMEOUT); the worker sees ctx.cancelled
_PRIORITY = 1  # an operator's command goes before the flows' own node work (priority 0 excepted)
_UNAVAILABLE_CODES = {"UNKNOWN_METHOD", "UNAVAILABLE", "TIMEOUT", "BUSY", "WORKER_LOST"}

FlowId = Annotated[str, Path(pattern=ID_PATTERN, description="the flow's id", examples=["example_flow"])]
NodeId = Annotated[str, Path(pattern=ID_PATTERN, description="the node's id", examples=["binance_price"])]
CycleNo = Annotated[int, Path(ge=0, le=MAX_CYCLE, description="cycle number (0, 1, 2, ... per flow)")]
ComponentNo = Annotated[int, Path(ge=0, le=1_000_000, description="`component_id`: a weakly connected component")]


def _require_served(sampler: Sampler, method: str) -> None:
    """A 503 at once (no broker round trip) when nothing serves ``method``."""
    status = sampler.require_status()
    served = int(status.get("methods", {}).get(method, {}).get("workers", 0))
    if served <= 0:
        who = "no pool worker serves node.execute" if method == "node.execute" else \
            f"the flow scheduler is not running: no worker serves {method} (start it with `tacore serve`)"
        raise ComponentUnavailable(SCHEDULER if method != "node.execute" else "workers", who)


def _loc(detail: dict[str, Any], where: str) -> tuple[str, ...]:
    pointer = detail.get("pointer")
    if isinstance(pointer, str):
        return (where, *(p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]))
    field = detail.get("field")
    return (where, *str(field).split(".")) if field else (where,)


def _raise_for(exc: RemoteError, method: str, where: str) -> None:
    component = "workers" if method == "node.execute" else SCHEDULER
    details = [d for d in exc.details if isinstance(d, dict)] if isinstance(exc.details, list) else []
    if exc.code == "INVALID_PARAMS":
        if any(d.get("type") == "not_found" for d in details):
            raise ComponentUnavailable(component, exc.message, status_code=404)
        errors = [{"type": str(d.get("type") or "value_error"), "loc": _loc(d, where),
                   "msg": str(d.get("message") or exc.message), "input": None,
                   **({"pointer": d["pointer"]} if isinstance(d.get("pointer"), str) else {})}
                  for d in details] or [{"type": "value_error", "loc": (where,), "msg": exc.message, "input": None}]
        raise RequestValidationError(errors)
    if exc.code == "CONFLICT":  # the state forbids it (stopping a cycle that already ended)
        raise ComponentUnavailable(component, exc.message, status_code=409)
    if exc.code in _UNAVAILABLE_CODES:
        raise ComponentUnavailable(component, f"{method} could not be answered: {exc.code}: {exc.message}")
    raise ComponentUnavailable(component, f"{method} failed: {exc.code}: {exc.message}", status_code=502)


async def call(link: BrokerLink, sampler: Sampler, method: str, params: dict[str, Any], *,
               timeout_ms: float = _READ_TIMEOUT_MS, where: str = "body", priority: int = _PRIORITY,
               limit: int | None = None) -> Any:
    """One broker call; its error codes become 404, 422, 503 or 502 (module docstring)."""
    _encoded(params, where, limit)
    _require_served(sampler, method)
    try:
        return await link.call(method, params, timeout_ms=timeout_ms, priority=priority)
    except RemoteError as exc:
        _raise_for(exc, method, where)
        raise  # unreachable: _raise_for always raises


def _reply(data: Any) -> JSONResponse:
    if not isinstance(data, dict):
        raise ComponentUnavailable(SCHEDULER, f"the scheduler answered {type(data).__name__}, not an object",
                                   status_code=502)
    return JSONResponse(data)


def _ok(model: type[Any], summary: str, extra: dict[int | str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The route's documented 200 (the reply passes through as the scheduler shaped it), and ``extra``
    (a 404 for a path naming a flow, cycle or node; a 413 for a definition or a node)."""
    responses: dict[int | str, dict[str, Any]] = {200: {"model": model, "description": "the method's reply data"}}
    responses.update(extra or {})
    return {"response_model": None, "summary": summary, "responses": responses}


def _encoded(params: dict[str, Any], where: str, limit: int | None) -> None:
    """A 422 for strings JSON cannot carry to the broker (lone surrogates, from a ``\\ud800`` escape), and a
    413 for params over ``limit`` bytes (the broker cannot even answer a frame over its limit)."""
    try:
        size = len(orjson.dumps(params)) + _ENVELOPE_BYTES
    except orjson.JSONEncodeError as exc:
        raise RequestValidationError([{"type": "string_unicode", "loc": (where,), "input": None,
                                       "msg": f"text must be valid Unicode (no lone surrogates): {exc}"}]) from None
    if limit is not None and size > limit:
        raise ComponentUnavailable("broker", f"the request would be {size} bytes, over the broker's "
                                   f"{limit}-byte limit (MAX_REQUEST_BYTES)", status_code=413)


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- flows -------------------------------------------------------------------------------------------------
@write_router.post("/flows/execute", **_ok(FlowRunReply, "Register a flow and run it (flow.run)", _TOO_LARGE))
async def execute_flow(body: FlowDefinition, link: LinkDep, sampler: SamplerDep, settings: SettingsDep) -> JSONResponse:
    params = body.model_dump(mode="json", exclude_unset=True)
    return _reply(await call(link, sampler, "flow.run", params, timeout_ms=_WRITE_TIMEOUT_MS,
                             limit=settings.max_request_bytes))


@read_router.get("/flows", **_ok(FlowList, "Flows with their state, next run and last cycle (flow.list)"))
async def list_flows(link: LinkDep, sampler: SamplerDep,
                     status: Annotated[str | None, Query(pattern=r"^(active|stopped)$",
                                                         description="only flows in this state")] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                     offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> JSONResponse:
    data = await call(link, sampler, "flow.list", _params(status=status, limit=limit, offset=offset), where="query")
    return _reply(data)


@read_router.get("/flows/{flow_id}/status",
                 **_ok(FlowStatus, "A flow's state, schedule, definition and recent cycles (flow.status)", _FOUND))
async def flow_status(flow_id: FlowId, link: LinkDep, sampler: SamplerDep,
                      cycles: Annotated[int, Query(ge=0, le=200, description="recent cycles to include")] = 10,
                      ) -> JSONResponse:
    return _reply(await call(link, sampler, "flow.status", {"flow_id": flow_id, "cycles": cycles}, where="path"))


@write_router.post("/flows/{flow_id}/stop",
                   **_ok(StopReply, "Stop a flow: no new cycles, running tasks cancelled (flow.stop)", _FOUND))
async def stop_flow(flow_id: FlowId, link: LinkDep, sampler: SamplerDep,
                    body: Annotated[StopBody | None, Body()] = None) -> JSONResponse:
    params = _params(flow_id=flow_id, reason=body.reason if body else None)
    return _reply(await call(link, sampler, "flow.stop", params, timeout_ms=_WRITE_TIMEOUT_MS, where="path"))


@read_router.get("/flows/{flow_id}/logs",
                 **_ok(LogList, "Task logs of a flow, oldest first, paged by id (flow.logs)", _FOUND))
async def flow_logs(flow_id: FlowId, link: LinkDep, sampler: SamplerDep,
                    cycle: Annotated[int | None, Query(ge=0, le=MAX_CYCLE)] = None,
                    node_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                    task_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
                    after_id: Annotated[int, Query(ge=0, le=2**62, description="only logs with a larger id")] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> JSONResponse:
    params = _params(flow_id=flow_id, cycle=cycle, node_id=node_id, task_id=task_id, after_id=after_id, limit=limit)
    return _reply(await call(link, sampler, "flow.logs", params, where="query"))


# -- cycles ------------------------------------------------------------------------------------------------
@read_router.get("/flows/{flow_id}/cycles",
                 **_ok(CycleList, "A flow's cycles, newest first (flow.cycles)", _FOUND))
async def list_cycles(flow_id: FlowId, link: LinkDep, sampler: SamplerDep,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                      before: Annotated[int | None, Query(ge=0, le=MAX_CYCLE, description="cycles below this")] = None,
                      ) -> JSONResponse:
    params = _params(flow_id=flow_id, limit=limit, before=before)
    return _reply(await call(link, sampler, "flow.cycles", params, where="query"))


@read_router.get("/flows/{flow_id}/cycles/{cycle}",
                 **_ok(CycleDetail, "One cycle with its tasks (flow.cycle.get)", _FOUND))
async def get_cycle(flow_id: FlowId, cycle: CycleNo, link: LinkDep, sampler: SamplerDep) -> JSONResponse:
    return _reply(await call(link, sampler, "flow.cycle.get", {"flow_id": flow_id, "cycle": cycle}, where="path"))


@write_router.post("/flows/{flow_id}/cycles",
                   **_ok(CycleStarted, "Start a cycle now, optionally with its number (flow.cycle)", _FOUND))
async def start_cycle(flow_id: FlowId, link: LinkDep, sampler: SamplerDep,
                      body: Annotated[CycleBody | None, Body()] = None) -> JSONResponse:
    params = _params(flow_id=flow_id, cycle=body.cycle if body else None)
    return _reply(await call(link, sampler, "flow.cycle", params, timeout_ms=_WRITE_TIMEOUT_MS))


@write_router.post("/flows/{flow_id}/cycles/{cycle}/retry",
                   **_ok(CycleSummary, "Re-run a cycle's failed, skipped and cancelled tasks (flow.cycle.retry)",
                         _FOUND))
async def retry_cycle(flow_id: FlowId, cycle: CycleNo, link: LinkDep, sampler: SamplerDep) -> JSONResponse:
    params = {"flow_id": flow_id, "cycle": cycle}
    return _reply(await call(link, sampler, "flow.cycle.retry", params, timeout_ms=_WRITE_TIMEOUT_MS, where="path"))


@write_router.post("/flows/{flow_id}/cycles/{cycle}/stop",
                   **_ok(StopReply, "Stop one cycle (flow.stop with cycle)", _ENDED))
async def stop_cycle(flow_id: FlowId, cycle: CycleNo, link: LinkDep, sampler: SamplerDep) -> JSONResponse:
    params = {"flow_id": flow_id, "cycle": cycle}
    return _reply(await call(link, sampler, "flow.stop", params, timeout_ms=_WRITE_TIMEOUT_MS, where="path"))


@write_router.post("/flows/{flow_id}/cycles/{cycle}/components/{component}/stop",
                   **_ok(StopReply, "Stop one component of one cycle (flow.stop with cycle and component)",
                       _ENDED))
async def stop_component(flow_id: FlowId, cycle: CycleNo, component: ComponentNo, link: LinkDep,
                         sampler: SamplerDep) -> JSONResponse:
    params = {"flow_id": flow_id, "cycle": cycle, "component": component}
    return _reply(await call(link, sampler, "flow.stop", params, timeout_ms=_WRITE_TIMEOUT_MS, where="path"))


# -- nodes and stats ---------------------------------------------------------------------------------------
@write_router.post("/nodes/execute",
                   **_ok(NodeExecuteReply, "Run one node on a pool worker, outside any cycle (node.execute)",
                       _TOO_LARGE))
async def execute_node(body: NodeExecuteBody, link: LinkDep, sampler: SamplerDep,
                       settings: SettingsDep) -> JSONResponse:
    params = body.model_dump(mode="json", exclude_unset=True)
    return _reply(await call(link, sampler, "node.execute", params, timeout_ms=_NODE_TIMEOUT_MS, priority=5,
                             limit=settings.max_request_bytes))


@read_router.get("/nodes/types", **_ok(NodeTypes, "Node types with their handles and config schemas "
                                                    "(flow.node_types)"))
async def node_types(link: LinkDep, sampler: SamplerDep) -> JSONResponse:
    return _reply(await call(link, sampler, "flow.node_types", {}, where="query"))


@read_router.get("/nodes/{node_id}/status",
                 **_ok(NodeStatusReply, "A node's latest task in each flow, or in one (node.status)", _FOUND))
async def node_status(node_id: NodeId, link: LinkDep, sampler: SamplerDep,
                      flow_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None) -> JSONResponse:
    return _reply(await call(link, sampler, "node.status", _params(node_id=node_id, flow_id=flow_id), where="query"))


@write_router.post("/nodes/{node_id}/stop",
                   **_ok(NodeStopReply, "Cancel a node's running tasks (node.stop)", _FOUND))
async def stop_node(node_id: NodeId, link: LinkDep, sampler: SamplerDep,
                    flow_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                    body: Annotated[NodeStopBody | None, Body()] = None) -> JSONResponse:
    params = _params(node_id=node_id, flow_id=flow_id or (body.flow_id if body else None))
    return _reply(await call(link, sampler, "node.stop", params, timeout_ms=_WRITE_TIMEOUT_MS, where="query"))


@read_router.get("/stats", **_ok(FlowStats, "The flow engine's slots, queue and counters, and resource use"))
async def stats(link: LinkDep, sampler: SamplerDep) -> JSONResponse:
    data = await call(link, sampler, "flow.stats", {})
    if not isinstance(data, dict):
        return _reply(data)
    resources = {"system": sampler.resources.system, "service": sampler.resources.service_totals()}
    return JSONResponse({**data, "resources": resources})
