"""Flow methods: ``node.execute`` (pool workers run one node) and ``flow.*`` / ``node.status`` / ``node.stop``
(the flow scheduler serves them over its engine). Shapes: docs/flows.md section 3."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tacore.errors import ErrorCode, TACoreError
from tacore.flows.engine import FlowEngine
from tacore.flows.model import FLOW_ID_RE
from tacore.flows.nodes import LocalContext, run_node
from workers.registry import CallContext, MethodRegistry

_HOST = socket.gethostname()


class NodeEdge(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    source: str
    target: str
    source_handle: str | None = Field(None, alias="sourceHandle")
    target_handle: str | None = Field(None, alias="targetHandle")


class NodeExecuteParams(BaseModel):
    """TradingFlow's ``/nodes/execute`` payload, plus the values on the input handles."""

    model_config = ConfigDict(extra="forbid")
    flow_id: str = Field("adhoc", pattern=FLOW_ID_RE.pattern)
    component_id: int = Field(0, ge=0)
    cycle: int = Field(0, ge=0)
    node_id: str = Field(pattern=FLOW_ID_RE.pattern)
    node_type: str = Field(min_length=1, max_length=128)
    input_edges: list[NodeEdge] = Field(default_factory=list)
    output_edges: list[NodeEdge] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    attempt: int = Field(1, ge=1)


_local = threading.local()


def _caller(method: str, params: dict[str, Any], timeout_s: float, request_id: str | None) -> Any:
    """Call a broker method from a node (price: kline.history; trade: execute.order): one client per thread."""
    from clients import LazyPirateClient, RemoteError
    from tacore.auth.credentials import client_keys
    from workers.dependencies import configured_settings

    client = getattr(_local, "client", None)
    if client is None:
        settings = configured_settings()
        client = LazyPirateClient(settings.client_endpoint, timeout_ms=10_000, retries=0,
                                  curve=client_keys(settings))
        _local.client = client
    try:
        return client.call(method, params, request_id=request_id, timeout_ms=timeout_s * 1000.0 + 500.0,
                           deadline_ms=timeout_s * 1000.0)
    except RemoteError as exc:
        raise TACoreError(f"{method}: {exc.message}", code=ErrorCode(exc.code) if exc.code in ErrorCode.__members__
                          else ErrorCode.INTERNAL, details=exc.details) from None
    except Exception as exc:
        _local.client = None
        client.close()
        raise TACoreError(f"{method}: {type(exc).__name__}: {exc}", code=ErrorCode.UNAVAILABLE) from None


def node_registry() -> MethodRegistry:
    from tacore.flows.nodes import node_types

    node_types()  # import the node modules now, not in the first node's time
    registry = MethodRegistry()

    @registry.method("node.execute", idempotent=True, role="trade")
    def node_execute(params: NodeExecuteParams, ctx: CallContext) -> dict[str, Any]:
        """Run one node on its inputs; its outputs by handle, its log lines."""
        started = time.perf_counter()
        node_ctx = LocalContext(flow_id=params.flow_id, cycle=params.cycle, node_id=params.node_id,
                                component_id=params.component_id, attempt=params.attempt, caller=_caller,
                                deadline=ctx.deadline, signal=ctx.cancelled)
        outputs = run_node(params.node_type, params.config, params.inputs, node_ctx)
        return {"node_id": params.node_id, "status": "completed", "outputs": outputs, "logs": node_ctx.logs,
                "worker": f"{ctx.worker_id}@{_HOST}:{os.getpid()}",
                "duration_ms": round((time.perf_counter() - started) * 1000.0, 3)}

    return registry


# -- flow.* (served by the scheduler) --------------------------------------------------------------------
class FlowRunParams(BaseModel):
    model_config = ConfigDict(extra="allow")


class FlowRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flow_id: str = Field(min_length=1, max_length=128)


class FlowStatusParams(FlowRef):
    cycles: int = Field(10, ge=0, le=500)


class FlowStopParams(FlowRef):
    cycle: int | None = Field(None, ge=0)
    component: int | None = Field(None, ge=0)
    reason: str | None = Field(None, max_length=500)


class FlowCycleParams(FlowRef):
    cycle: int | None = Field(None, ge=0)


class FlowCycleRef(FlowRef):
    cycle: int = Field(ge=0)


class FlowCyclesParams(FlowRef):
    limit: int = Field(50, ge=1, le=1000)
    before: int | None = Field(None, ge=0)


class FlowListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, pattern="^(active|stopped)$")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class FlowLogsParams(FlowRef):
    cycle: int | None = Field(None, ge=0)
    node_id: str | None = None
    task_id: str | None = None
    after_id: int = Field(0, ge=0)
    limit: int = Field(200, ge=1, le=5000)


class NodeRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node_id: str = Field(min_length=1, max_length=128)
    flow_id: str | None = None


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


FLOW_METHODS = ("flow.run", "flow.status", "flow.stop", "flow.cycle", "flow.cycle.get", "flow.cycle.retry",
                "flow.cycles", "flow.list", "flow.logs", "flow.stats", "flow.node_types", "node.status", "node.stop")


def flow_registry(engine: FlowEngine) -> MethodRegistry:
    """The scheduler's methods. All are safe to repeat: ``flow.cycle`` keys its cycle by the request_id."""
    registry = MethodRegistry()

    @registry.method("flow.run", idempotent=True)
    def flow_run(params: FlowRunParams) -> dict[str, Any]:
        """Register (or replace) a flow and schedule it."""
        return engine.run(params.model_dump())

    @registry.method("flow.status", idempotent=True, role="read")
    def flow_status(params: FlowStatusParams) -> dict[str, Any]:
        """A flow's state, next run, counts and recent cycles."""
        return engine.status(params.flow_id, params.cycles)

    @registry.method("flow.stop", idempotent=True)
    def flow_stop(params: FlowStopParams) -> dict[str, Any]:
        """Stop a flow, one of its cycles, or one component of a cycle."""
        return engine.stop(params.flow_id, params.cycle, params.component, params.reason)

    @registry.method("flow.cycle", idempotent=True)
    def flow_cycle(params: FlowCycleParams, ctx: CallContext) -> dict[str, Any]:
        """Start a manual cycle now (optionally with a given number)."""
        return engine.trigger(params.flow_id, params.cycle, ctx.request_id)

    @registry.method("flow.cycle.get", idempotent=True, role="read")
    def flow_cycle_get(params: FlowCycleRef) -> dict[str, Any]:
        """One cycle with its tasks."""
        return engine.cycle(params.flow_id, params.cycle)

    @registry.method("flow.cycle.retry", idempotent=True)
    def flow_cycle_retry(params: FlowCycleRef) -> dict[str, Any]:
        """Re-run a finished cycle's failed, skipped and cancelled tasks on the stored outputs of the rest."""
        return engine.retry(params.flow_id, params.cycle)

    @registry.method("flow.cycles", idempotent=True, role="read")
    def flow_cycles(params: FlowCyclesParams) -> dict[str, Any]:
        """A flow's cycles, newest first."""
        return engine.cycles(params.flow_id, params.limit, params.before)

    @registry.method("flow.list", idempotent=True, role="read")
    def flow_list(params: FlowListParams) -> dict[str, Any]:
        """Every flow with its state and last cycle."""
        return engine.list(params.status, params.limit, params.offset)

    @registry.method("flow.logs", idempotent=True, role="read")
    def flow_logs(params: FlowLogsParams) -> dict[str, Any]:
        """Task logs of a flow (a cycle, a node, a task), oldest first after ``after_id``."""
        return engine.logs(params.flow_id, params.cycle, params.node_id, params.task_id, params.after_id,
                           params.limit)

    @registry.method("flow.stats", idempotent=True, role="read")
    def flow_stats(params: NoParams) -> dict[str, Any]:
        """The scheduler's slots, queue and counters."""
        return engine.stats()

    @registry.method("flow.node_types", idempotent=True, role="read")
    def flow_node_types(params: NoParams) -> dict[str, Any]:
        """The registered node types with their handles and config schemas."""
        from tacore.flows.nodes import describe

        return {"node_types": describe()}

    @registry.method("node.status", idempotent=True, role="read")
    def node_status(params: NodeRef) -> dict[str, Any]:
        """The latest task of a node, per flow."""
        return engine.node_status(params.node_id, params.flow_id)

    @registry.method("node.stop", idempotent=True, role="trade")
    def node_stop(params: NodeRef) -> dict[str, Any]:
        """Cancel the running tasks of a node."""
        return engine.stop_node(params.node_id, params.flow_id)

    return registry
