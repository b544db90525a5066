"""Bodies and replies of the flow endpoints (docs/flows.md): they document ``/flows``, ``/nodes`` and
``/stats`` in the OpenAPI schema.

Bodies are modelled as the TradingFlow document sends them (``flow_json`` of nodes and edges, both handle
spellings) and as the workflow demo's templates do (``tasks`` with ``depends_on``). They check types and
ranges only: the flow scheduler validates a definition as a whole (node types, configs, edges, cycles) and
answers every problem with a JSON pointer, which the sidecar passes on as a 422. Nodes may be any object,
so the document's empty ``{}`` reaches the scheduler and is reported there. Replies list the fields the
contract names; every reply may carry more.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: flow and node ids, as the flow model takes them (tacore.flows.model.FLOW_ID_RE)
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"
MAX_CYCLE = 2**53  # JSON-safe; far beyond any cycle number a flow reaches
TASK_STATUSES = "`pending` `queued` `running` `completed` `failed` `skipped` `cancelled` `preempted`"
CYCLE_STATUSES = "`pending` `running` `completed` `failed` `cancelled` `missed`"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _OpenBody(BaseModel):
    """A body part that may carry more fields; strict, so `false` is no integer and `"1"` no number."""

    model_config = ConfigDict(extra="allow", strict=True)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- bodies ---------------------------------------------------------------------------------------------------
class FlowNode(_OpenBody):
    """A node of ``flow_json``; all fields optional here (the scheduler names what is missing)."""

    id: str | None = Field(None, max_length=128, examples=["binance_price"])
    type: str | None = Field(None, max_length=128, description="node type, e.g. binance_price_node")
    config: dict[str, Any] | None = Field(None, description="the type's settings; `node_class_type` may name the type")
    name: str | None = None
    timeout_ms: int | None = Field(None, ge=1, le=86_400_000)
    retries: int | None = Field(None, ge=0, le=20)


class FlowEdge(_OpenBody):
    """An edge of ``flow_json``: handles optional (default `output` -> `input`), either spelling."""

    source: str | None = Field(None, max_length=128)
    target: str | None = Field(None, max_length=128)
    source_handle: str | None = Field(None, max_length=128)
    target_handle: str | None = Field(None, max_length=128)
    sourceHandle: str | None = Field(None, max_length=128)
    targetHandle: str | None = Field(None, max_length=128)


class FlowJson(_Body):
    nodes: list[FlowNode] = Field(default_factory=list, max_length=10_000)
    edges: list[FlowEdge] = Field(default_factory=list, max_length=100_000)


class DemoTask(_OpenBody):
    """A task of the workflow demo's template."""

    id: str | None = Field(None, max_length=128)
    name: str | None = None
    action: str | None = Field(None, max_length=128)
    depends_on: list[str] = Field(default_factory=list, max_length=10_000)
    timeout: int | None = Field(None, ge=1, le=86_400_000, description="ms")
    retry: int | None = Field(None, ge=0, le=20)


class TriggerFilter(_Body):
    symbols: list[str] = Field(default_factory=list, max_length=10_000)
    intervals: list[str] = Field(default_factory=list, max_length=16)


_DOC_FLOW: dict[str, Any] = {
    "flow_id": "example_flow", "cycle_interval": "1m",
    "flow_json": {
        "nodes": [
            {"id": "binance_price", "type": "binance_price_node",
             "config": {"node_class_type": "binance_price_node", "symbol": "BTCUSDT", "interval": "1h", "limit": 10}},
            {"id": "ai_model_node", "type": "ai_model_node",
             "config": {"node_class_type": "ai_model_node", "operation": "rolling_avg", "window": 5}},
        ],
        "edges": [{"source": "binance_price", "target": "ai_model_node"}],
    },
}


class FlowDefinition(_OpenBody):
    """``flow.run``'s params: TradingFlow's ``flow_id`` + ``flow_json``, or the demo's ``id`` + ``tasks``."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"example": _DOC_FLOW})
    flow_id: str | None = Field(None, max_length=128, description="required unless `id` is given")
    id: str | None = Field(None, max_length=128, description="the workflow demo's spelling of `flow_id`")
    name: str | None = None
    description: str | None = None
    cycle_interval: str | None = Field(None, max_length=16, description="`1s` .. `1d`, aligned to the wall clock")
    cron: str | None = Field(None, max_length=128, description="5-field cron (UTC), instead of `cycle_interval`")
    trigger: Literal["schedule", "manual", "event"] | None = None
    trigger_event: Literal["DATA_READY"] | None = None
    trigger_filter: TriggerFilter | None = None
    priority: int | None = Field(None, ge=0, le=9, description="0 (highest) .. 9; default 5")
    max_concurrent: int | None = Field(None, ge=0, le=10_000, description="running tasks at once; 0: no limit")
    overlap: Literal["skip", "buffer_one", "cancel_other"] | None = None
    catch_up_s: float | None = Field(None, ge=0, le=7 * 86400)
    timeout_ms: int | None = Field(None, ge=1, le=86_400_000)
    retries: int | None = Field(None, ge=0, le=20)
    start: bool | None = Field(None, description="false registers the flow stopped")
    flow_json: FlowJson | None = None
    tasks: list[DemoTask] | None = Field(None, max_length=10_000)


class CycleBody(_Body):
    """``POST /flows/{flow_id}/cycles``: the cycle number to use, or none for the next."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"example": {"cycle": 5}})
    cycle: int | None = Field(None, ge=0, le=MAX_CYCLE)


class StopBody(_Body):
    reason: str | None = Field(None, max_length=500)


class NodeStopBody(_Body):
    flow_id: str | None = Field(None, pattern=ID_PATTERN)


class NodeEdge(_OpenBody):
    source: str = Field(max_length=128)
    target: str = Field(max_length=128)
    source_handle: str | None = Field(None, max_length=128)
    target_handle: str | None = Field(None, max_length=128)


_DOC_NODE: dict[str, Any] = {
    "flow_id": "example_flow", "component_id": 1, "cycle": 1, "node_id": "binance_price_node_1",
    "node_type": "binance_price_node", "input_edges": [],
    "output_edges": [{"source": "binance_price_node_1", "source_handle": "price_data_handle",
                      "target": "data_processor_2", "target_handle": "price_data_handle"}],
    "config": {"node_class_type": "binance_price_node", "symbol": "BTCUSDT", "interval": "1h", "limit": 10},
}


class NodeExecuteBody(_Body):
    """TradingFlow's ``/nodes/execute`` payload: one node run on a pool worker, outside any cycle."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"example": _DOC_NODE})
    flow_id: str | None = Field(None, pattern=ID_PATTERN)
    component_id: int = Field(0, ge=0, le=1_000_000)
    cycle: int = Field(0, ge=0, le=MAX_CYCLE)
    node_id: str = Field(pattern=ID_PATTERN)
    node_type: str = Field(min_length=1, max_length=128)
    input_edges: list[NodeEdge] = Field(default_factory=list, max_length=10_000)
    output_edges: list[NodeEdge] = Field(default_factory=list, max_length=10_000)
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict, description="values by input handle")
    attempt: int = Field(1, ge=1, le=1000, description="which attempt this is (a `fail` action reads it)")


# -- replies --------------------------------------------------------------------------------------------------
class Component(_Open):
    component_id: int
    nodes: list[str]


class FlowRunReply(_Open):
    flow_id: str
    status: str = Field(description="`active` or `stopped`")
    components: list[Component] = Field(default_factory=list)
    next_run_at: float | None = Field(None, description="epoch seconds")


class CycleSummary(_Open):
    flow_id: str
    cycle: int
    status: str = Field(description=CYCLE_STATUSES)
    trigger: str | None = Field(None, description="`schedule`, `manual`, `event` or `retry`")
    scheduled_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    lateness_ms: float | None = None
    error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="tasks by status")
    components: dict[str, str] = Field(default_factory=dict, description="status by component_id")


class TaskRow(_Open):
    """A row of the Tradefree ``tasks`` table plus the flow's columns."""

    id: str
    type: str | None = None
    status: str = Field(description=TASK_STATUSES)
    input_data: Any = None
    output_data: Any = None
    error_message: str | None = None
    flow_id: str | None = None
    cycle: int | None = None
    node_id: str
    component_id: int | None = None
    attempt: int | None = None
    worker: str | None = None
    priority: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: float | None = None


class CycleDetail(CycleSummary):
    tasks: list[TaskRow] = Field(default_factory=list)


class FlowStatus(_Open):
    flow_id: str
    status: str = Field(description="`active` or `stopped`")
    trigger: str | None = None
    cycle_interval: str | None = None
    cron: str | None = None
    priority: int | None = None
    max_concurrent: int | None = None
    overlap: str | None = None
    next_run_at: float | None = None
    last_cycle: int | None = None
    running_cycles: list[int] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    recent_cycles: list[CycleSummary] = Field(default_factory=list)
    definition: dict[str, Any] = Field(default_factory=dict, description="`nodes` and `edges` as registered")
    components: list[Component] = Field(default_factory=list)


class FlowListItem(_Open):
    flow_id: str
    name: str | None = None
    status: str
    trigger: str | None = None
    cycle_interval: str | None = None
    cron: str | None = None
    priority: int | None = None
    next_run_at: float | None = None
    last_cycle: int | None = None
    last_status: str | None = None


class FlowList(_Open):
    flows: list[FlowListItem]
    total: int


class CycleList(_Open):
    cycles: list[CycleSummary]


class CycleStarted(_Open):
    flow_id: str
    cycle: int
    status: str
    scheduled_at: float | None = None


class StopReply(_Open):
    flow_id: str
    status: str | None = Field(None, description="`stopped` when the whole flow was stopped")
    cycle: int | None = None
    component: int | None = None
    cancelled_tasks: int


class TaskLog(_Open):
    id: int
    task_id: str
    node_id: str | None = None
    cycle: int | None = None
    level: str
    message: str
    created_at: float


class LogList(_Open):
    logs: list[TaskLog]


class NodeLog(_Open):
    level: str
    message: str
    ts: float | None = None


class NodeExecuteReply(_Open):
    node_id: str
    status: str = Field(description="`completed` or `skipped`")
    outputs: dict[str, Any] = Field(default_factory=dict, description="values by output handle")
    logs: list[NodeLog] = Field(default_factory=list)
    duration_ms: float | None = None


class NodeStatusReply(_Open):
    node_id: str
    tasks: list[TaskRow] = Field(description="the node's latest task in each flow")


class NodeStopReply(_Open):
    node_id: str
    cancelled_tasks: int


class NodeTypeInfo(_Open):
    type: str
    aliases: list[str] = Field(default_factory=list)
    inputs: list[str] = Field(default_factory=list, description="input handles (`*`: any)")
    outputs: list[str] = Field(default_factory=list, description="output handles")
    description: str | None = None
    config_schema: dict[str, Any] = Field(default_factory=dict, description="JSON Schema of the type's config")


class NodeTypes(_Open):
    node_types: list[NodeTypeInfo]


class FlowStats(_Open):
    """``flow.stats`` (slots, queue, counters, latencies) and the host's resource use, as the document's
    ``/stats`` ("resource usage statistics")."""

    slots: int | None = None
    slots_used: int | None = None
    queued: int | None = None
    running: int | None = None
    flows: int | None = None
    active_flows: int | None = None
    resources: dict[str, Any] = Field(default_factory=dict, description="`system` and `service` CPU and memory")
