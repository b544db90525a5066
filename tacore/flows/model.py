"""One flow model for the TradingFlow document's ``flow_json`` and the workflow demo's templates.

``parse_flow`` turns either spelling into a ``FlowSpec`` or raises ``FlowInvalid`` listing every problem
at once, each with a JSON pointer into what was sent (docs/flows.md section 1). The node types' config
models and handles come from a ``TypeCatalog`` (``tacore.flows.nodes``), so this module stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tacore.errors import InvalidParams

FLOW_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
INTERVAL_RE = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ANY_HANDLE = "*"

Overlap = Literal["skip", "buffer_one", "cancel_other"]
Trigger = Literal["schedule", "manual", "event"]


def interval_seconds(text: str) -> int:
    """``1s`` .. ``1d`` in seconds; ValueError otherwise."""
    match = INTERVAL_RE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an interval like 30s, 1m, 4h or 1d")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if not 1 <= seconds <= 86400:
        raise ValueError(f"{text!r}: a cycle interval is 1s to 1d")
    return seconds


class TriggerFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] = Field(default_factory=list)
    intervals: list[str] = Field(default_factory=list)

    def matches(self, symbol: str, interval: str) -> bool:
        return (not self.symbols or symbol.upper() in {s.upper() for s in self.symbols}) and (
            not self.intervals or interval in self.intervals)


class FlowOptions(BaseModel):
    """The flow's own fields (everything but nodes and edges); unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    flow_id: str = Field(alias="id")
    name: str | None = None
    description: str | None = None
    cycle_interval: str | None = None
    cron: str | None = None
    trigger: Trigger | None = None
    trigger_event: Literal["DATA_READY"] | None = None
    trigger_filter: TriggerFilter = Field(default_factory=TriggerFilter)
    priority: int = Field(5, ge=0, le=9)
    max_concurrent: int = Field(0, ge=0, le=10_000)
    overlap: Overlap = "skip"
    catch_up_s: float = Field(0.0, ge=0, le=7 * 86400)
    timeout_ms: int = Field(30_000, ge=1, le=86_400_000)
    retries: int = Field(0, ge=0, le=20)
    start: bool = True

    @field_validator("flow_id")
    @classmethod
    def _flow_id(cls, value: str) -> str:
        if not FLOW_ID_RE.match(value):
            raise ValueError("1 to 128 characters: letters, digits and _ . : -")
        return value

    @field_validator("cycle_interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            interval_seconds(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from croniter import croniter

            if len(value.split()) != 5 or not croniter.is_valid(value):
                raise ValueError(f"{value!r} is not a 5-field cron expression")
        return value


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: str
    type: str  # the registered (canonical) type name
    config: dict[str, Any]  # as validated by the type's model, dumped to JSON-able data
    name: str | None = None
    timeout_ms: int | None = None
    retries: int | None = None


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    source: str
    target: str
    source_handle: str
    target_handle: str


@dataclass(frozen=True, slots=True)
class FlowSpec:
    options: FlowOptions
    nodes: tuple[NodeSpec, ...]
    edges: tuple[EdgeSpec, ...]
    components: tuple[tuple[str, ...], ...]  # node ids per component_id

    @property
    def flow_id(self) -> str:
        return self.options.flow_id

    @property
    def trigger(self) -> Trigger:
        o = self.options
        if o.trigger is not None:
            return o.trigger
        if o.trigger_event is not None:
            return "event"
        return "schedule" if (o.cycle_interval or o.cron) else "manual"

    def component_of(self) -> dict[str, int]:
        return {node: n for n, members in enumerate(self.components) for node in members}

    def node(self, node_id: str) -> NodeSpec:
        return next(n for n in self.nodes if n.id == node_id)

    def upstream(self) -> dict[str, list[EdgeSpec]]:
        out: dict[str, list[EdgeSpec]] = {n.id: [] for n in self.nodes}
        for edge in self.edges:
            out[edge.target].append(edge)
        return out

    def definition(self) -> dict[str, Any]:
        """The canonical JSON form (what ``flow.status`` shows and the store keeps)."""
        return {
            **self.options.model_dump(mode="json", exclude_none=True),
            "flow_json": {
                "nodes": [{"id": n.id, "type": n.type, "config": n.config,
                           **({"name": n.name} if n.name else {}),
                           **({"timeout_ms": n.timeout_ms} if n.timeout_ms is not None else {}),
                           **({"retries": n.retries} if n.retries is not None else {})} for n in self.nodes],
                "edges": [{"source": e.source, "target": e.target, "source_handle": e.source_handle,
                           "target_handle": e.target_handle} for e in self.edges],
            },
        }


class NodeTypeInfo(Protocol):
    """What validation needs of a node type (``tacore.flows.nodes.NodeBase`` subclasses fit)."""

    type_name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    Config: type[BaseModel]


TypeCatalog = Callable[[str], NodeTypeInfo | None]


@dataclass
class Problems:
    items: list[dict[str, str]] = field(default_factory=list)
    #: node id -> type of every node whose id and type are good (config or not), for checking edges
    known: dict[str, str] = field(default_factory=dict)

    def add(self, pointer: str, kind: str, message: str) -> None:
        self.items.append({"pointer": pointer, "type": kind, "message": message})


class FlowInvalid(InvalidParams):
    """Every problem of a flow definition, each ``{"pointer", "type", "message"}``."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        first = problems[0]["message"] if problems else "invalid flow"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid flow: {first}{more}", details=problems)


def _pointer(*parts: object) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


_NODE_KEYS = {"id", "type", "config", "name", "timeout_ms", "retries", "position", "data"}
_TASK_KEYS = {"id", "name", "action", "depends_on", "timeout", "retry", "config", "type"}


def parse_flow(raw: Mapping[str, Any], catalog: TypeCatalog) -> FlowSpec:
    """The flow ``raw`` describes, or ``FlowInvalid`` with every problem found."""
    problems = Problems()
    if not isinstance(raw, Mapping):
        raise FlowInvalid([{"pointer": "", "type": "invalid_field", "message": "a flow is a JSON object"}])
    body = dict(raw)
    flow_json = body.pop("flow_json", None)
    tasks = body.pop("tasks", None)
    options = _options(body, problems)
    nodes: list[NodeSpec] = []
    edges: list[tuple[str, dict[str, Any]]] = []  # (pointer, raw edge)
    if flow_json is None and tasks is None:
        problems.add("", "invalid_field", "a flow needs flow_json (nodes and edges) or tasks")
    if flow_json is not None:
        if not isinstance(flow_json, Mapping):
            problems.add("/flow_json", "invalid_field", "flow_json is an object with nodes and edges")
        else:
            raw_nodes = flow_json.get("nodes", [])
            raw_edges = flow_json.get("edges", [])
            for key in set(flow_json) - {"nodes", "edges"}:
                problems.add(_pointer("flow_json", key), "invalid_field", f"unknown field {key!r}")
            if not isinstance(raw_nodes, list):
                problems.add("/flow_json/nodes", "invalid_field", "nodes is a list")
                raw_nodes = []
            if not isinstance(raw_edges, list):
                problems.add("/flow_json/edges", "invalid_field", "edges is a list")
                raw_edges = []
            for i, item in enumerate(raw_nodes):
                node = _node(item, _pointer("flow_json", "nodes", i), catalog, problems)
                if node is not None:
                    nodes.append(node)
            edges.extend((_pointer("flow_json", "edges", i), e) for i, e in enumerate(raw_edges))
    if tasks is not None:
        if not isinstance(tasks, list):
            problems.add("/tasks", "invalid_field", "tasks is a list")
        else:
            for i, item in enumerate(tasks):
                node = _task(item, _pointer("tasks", i), catalog, problems, edges)
                if node is not None:
                    nodes.append(node)
    if not nodes and not problems.items:
        problems.add("/flow_json/nodes" if flow_json is not None else "/tasks", "invalid_field",
                     "a flow has at least one node")
    by_id = {node.id: node for node in nodes}
    good_edges = [e for e in (_edge(p, raw_edge, problems.known, catalog, problems) for p, raw_edge in edges)
                  if e is not None]
    cycle = find_cycle(list(problems.known), good_edges)
    if cycle:
        problems.add("/flow_json/edges" if flow_json is not None else "/tasks", "cycle",
                     "the flow has a cycle: " + " -> ".join(cycle))
    if problems.items or options is None:
        raise FlowInvalid(problems.items)
    unique = list(by_id.values())
    return FlowSpec(options, tuple(unique), tuple(good_edges), components([n.id for n in unique], good_edges))


def _options(body: dict[str, Any], problems: Problems) -> FlowOptions | None:
    try:
        return FlowOptions.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = [("flow_id" if p == "id" else p) for p in err["loc"]]
            problems.add(_pointer(*loc), "invalid_field", f"{'.'.join(map(str, loc)) or 'flow'}: {err['msg']}")
        return None


def _config(type_info: NodeTypeInfo, config: Any, pointer: str, problems: Problems) -> dict[str, Any] | None:
    if not isinstance(config, Mapping):
        problems.add(pointer, "invalid_config", "config is an object")
        return None
    given = {k: v for k, v in config.items() if k != "node_class_type"}
    try:
        model = type_info.Config.model_validate(given)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problems.add(pointer + _pointer(*err["loc"]), "invalid_config",
                         f"{type_info.type_name}: {'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}")
        return None
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def _node(item: Any, pointer: str, catalog: TypeCatalog, problems: Problems) -> NodeSpec | None:
    if not isinstance(item, Mapping):
        problems.add(pointer, "invalid_field", "a node is an object with id, type and config")
        return None
    if not item:
        problems.add(pointer, "empty_node", "empty node object: a node needs id, type and config")
        return None
    ok = True
    for key in set(item) - _NODE_KEYS:
        problems.add(pointer + _pointer(key), "invalid_field", f"unknown node field {key!r}")
    node_id = item.get("id")
    if not isinstance(node_id, str) or not FLOW_ID_RE.match(node_id):
        problems.add(pointer + "/id", "invalid_field", "a node id is 1 to 128 of letters, digits and _ . : -")
        ok = False
    config = item.get("config", {})
    type_name = item.get("type") or (config.get("node_class_type") if isinstance(config, Mapping) else None)
    type_info = catalog(type_name) if isinstance(type_name, str) else None
    if not isinstance(type_name, str):
        problems.add(pointer + "/type", "invalid_field", "a node needs a type")
        return None
    if type_info is None:
        problems.add(pointer + "/type", "unknown_type", f"unknown node type {type_name!r}")
        return None
    if ok and str(node_id) in problems.known:
        problems.add(pointer + "/id", "duplicate_id", f"node id {node_id!r} is used twice")
        return None
    if ok:
        problems.known[str(node_id)] = type_info.type_name
    dumped = _config(type_info, config, pointer + "/config", problems)
    timeout, retries = item.get("timeout_ms"), item.get("retries")
    for key, value, top in (("timeout_ms", timeout, 86_400_000), ("retries", retries, 20)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top):
            problems.add(pointer + "/" + key, "invalid_field", f"{key} is an integer 0..{top}")
            ok = False
    if dumped is None or not ok:
        return None
    return NodeSpec(str(node_id), type_info.type_name, dumped, item.get("name"), timeout, retries)


def _task(item: Any, pointer: str, catalog: TypeCatalog, problems: Problems,
          edges: list[tuple[str, dict[str, Any]]]) -> NodeSpec | None:
    """A workflow-demo task: ``action`` is an action node's config; ``depends_on`` become edges."""
    if not isinstance(item, Mapping) or not item:
        problems.add(pointer, "empty_node", "empty task object: a task needs id and action")
        return None
    for key in set(item) - _TASK_KEYS:
        problems.add(pointer + _pointer(key), "invalid_field", f"unknown task field {key!r}")
    depends = item.get("depends_on") or []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        problems.add(pointer + "/depends_on", "invalid_field", "depends_on is a list of task ids")
        depends = []
    for j, dep in enumerate(depends):
        edges.append((pointer + f"/depends_on/{j}", {"source": dep, "target": item.get("id")}))
    config = dict(item.get("config") or {})
    node_type = item.get("type") or "action_node"
    if "action" in item:
        config["action"] = item["action"]
    node = _node({"id": item.get("id"), "type": node_type, "config": config, "name": item.get("name")},
                 pointer, catalog, problems)
    timeout, retry = item.get("timeout"), item.get("retry")
    if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0):
        problems.add(pointer + "/timeout", "invalid_field", "timeout is a positive number of milliseconds")
        return None
    if retry is not None and (not isinstance(retry, int) or isinstance(retry, bool) or not 0 <= retry <= 20):
        problems.add(pointer + "/retry", "invalid_field", "retry is an integer 0..20")
        return None
    if node is None:
        return None
    return NodeSpec(node.id, node.type, node.config, node.name,
                    None if timeout is None else max(1, int(timeout)), retry)


def _edge(pointer: str, raw: Any, nodes: dict[str, str], catalog: TypeCatalog,
          problems: Problems) -> EdgeSpec | None:
    if not isinstance(raw, Mapping):
        problems.add(pointer, "invalid_field", "an edge is an object with source and target")
        return None
    ok = True
    ends: dict[str, tuple[str, str]] = {}  # end -> (node id, type)
    for end in ("source", "target"):
        name = raw.get(end)
        if not isinstance(name, str):
            problems.add(pointer + "/" + end if "depends_on" not in pointer else pointer, "invalid_field",
                         f"an edge needs a {end} node id")
            ok = False
        elif name not in nodes:
            problems.add(pointer + "/" + end if "depends_on" not in pointer else pointer, "unknown_node",
                         f"edge {end} {name!r} is not a node of this flow")
            ok = False
        else:
            ends[end] = (name, nodes[name])
    if not ok:
        return None
    handles = {}
    for end, key, camel, side in (("source", "source_handle", "sourceHandle", "outputs"),
                                  ("target", "target_handle", "targetHandle", "inputs")):
        node_id, type_name = ends[end]
        info = catalog(type_name)
        assert info is not None  # the node was accepted with this type
        declared: tuple[str, ...] = getattr(info, side)
        handle = raw.get(key, raw.get(camel))
        if handle is None:
            handle = declared[0] if declared and declared[0] != ANY_HANDLE else ("output" if end == "source"
                                                                                    else "input")
        if not isinstance(handle, str) or (ANY_HANDLE not in declared and handle not in declared):
            where = key if key in raw or camel not in raw else camel
            problems.add(pointer + "/" + where, "unknown_handle",
                         f"{type_name} node {node_id!r} has no {side[:-1]} handle {handle!r} "
                         f"(it has {', '.join(declared) or 'none'})")
            ok = False
        handles[end] = handle
    if not ok:
        return None
    return EdgeSpec(ends["source"][0], ends["target"][0], handles["source"], handles["target"])


def find_cycle(nodes: list[str], edges: list[EdgeSpec]) -> list[str] | None:
    """A cycle as ``[a, b, c, a]`` if the graph has one (iterative DFS), else None."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        succ[e.source].append(e.target)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in nodes:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            nexts = succ[node]
            if index < len(nexts):
                stack.append((node, index + 1))
                child = nexts[index]
                if state.get(child) == 1:
                    return [*path[path.index(child):], child]
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def components(nodes: list[str], edges: list[EdgeSpec]) -> tuple[tuple[str, ...], ...]:
    """Weakly connected components, numbered by the order of their first node."""
    parent = {n: n for n in nodes}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for e in edges:
        a, b = find(e.source), find(e.target)
        if a != b:
            parent[b] = a
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(find(n), []).append(n)
    return tuple(tuple(members) for members in groups.values())


def topological_order(spec: FlowSpec) -> list[str]:
    indegree = {n.id: 0 for n in spec.nodes}
    for e in spec.edges:
        indegree[e.target] += 1
    ready = [n.id for n in spec.nodes if indegree[n.id] == 0]
    order: list[str] = []
    succ: dict[str, list[str]] = {}
    for e in spec.edges:
        succ.setdefault(e.source, []).append(e.target)
    while ready:
        n = ready.pop(0)
        order.append(n)
        for t in succ.get(n, []):
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    return order
