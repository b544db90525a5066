"""A stand-in flow scheduler for the sidecar's flow routes, until the engine's scheduler process serves them.

A real ``Worker`` on the real broker (kind ``flow-scheduler``; every method marked idempotent, a stand-in
has no store) serving the contract's methods (docs/flows.md section 3) with its reply shapes. What is real:
definitions are parsed and validated by the engine's own
``tacore.flows.model.parse_flow`` over its node registry (so a refused definition carries the engine's JSON
pointers), components come from it, and ``node.execute`` runs the engine's node code (``run_node``). What
is stood in: cycles do not run; a cycle's tasks take fixed states by topological layer (first layer
``completed``, second ``running``, the rest ``pending``), so a multi-layer flow stays visibly running; and
``kline.history`` for a price node is answered here with made-up candles.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from tacore.errors import InvalidParams
from tacore.flows.model import FlowSpec, parse_flow
from tacore.flows.nodes import LocalContext, node_type, run_node
from workers.registry import MethodRegistry
from workers.runtime import Worker

TERMINAL = {"completed", "failed", "skipped", "cancelled"}


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def not_found(what: str) -> InvalidParams:
    return InvalidParams(f"no such {what}", details=[{"type": "not_found", "message": f"no such {what}"}])


def layers(spec: FlowSpec) -> dict[str, int]:
    depth = {n.id: 0 for n in spec.nodes}
    for _ in spec.nodes:  # longest path from a root; the DAG has no cycle (parse_flow checked)
        for e in spec.edges:
            depth[e.target] = max(depth[e.target], depth[e.source] + 1)
    return depth


def candles(symbol: str, interval: str, limit: int) -> dict[str, Any]:
    now = int(time.time() // 3600 * 3600 * 1000)
    rows = [{"open_time": now - (limit - i) * 3_600_000, "close_time": now - (limit - i - 1) * 3_600_000 - 1,
             "open": 100.0 + i, "high": 101.0 + i, "low": 99.0 + i, "close": 100.5 + i, "volume": 10.0,
             "closed": True} for i in range(limit)]
    return {"symbol": symbol, "interval": interval, "count": limit, "candles": rows}


class FakeScheduler:
    def __init__(self, endpoint: str, heartbeat_interval_ms: int = 1000) -> None:
        self.flows: dict[str, dict[str, Any]] = {}
        self.logs: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        registry = MethodRegistry()
        self._register(registry)
        self.worker = Worker(endpoint, registry, worker_id="fake-scheduler", kind="flow-scheduler", credit=4,
                             heartbeat_interval_ms=heartbeat_interval_ms)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True, name="fake-scheduler")

    def start(self) -> FakeScheduler:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)

    # -- state --------------------------------------------------------------------------------------------
    def flow(self, flow_id: str) -> dict[str, Any]:
        flow = self.flows.get(flow_id)
        if flow is None:
            raise not_found(f"flow {flow_id!r}")
        return flow

    def new_cycle(self, flow: dict[str, Any], number: int, trigger: str) -> dict[str, Any]:
        spec: FlowSpec = flow["spec"]
        depth, component_of, now = layers(spec), spec.component_of(), time.time()
        tasks = []
        for node in spec.nodes:
            status = {0: "completed", 1: "running"}.get(depth[node.id], "pending")
            task = {"id": uuid.uuid4().hex, "type": node.type, "status": status, "input_data": {},
                    "output_data": {"output": depth[node.id]} if status == "completed" else None,
                    "error_message": None, "created_at": now, "updated_at": now, "flow_id": spec.flow_id,
                    "cycle": number, "node_id": node.id, "component_id": component_of[node.id], "attempt": 1,
                    "worker": "fake-worker" if status != "pending" else None, "priority": spec.options.priority,
                    "request_id": None, "queued_at": now, "started_at": now if status != "pending" else None,
                    "finished_at": now if status == "completed" else None,
                    "duration_ms": 1.5 if status == "completed" else None}
            tasks.append(task)
            if status != "pending":
                self.log(task, "INFO", f"{node.id} {'finished' if status == 'completed' else 'started'}")
        cycle = {"flow_id": spec.flow_id, "cycle": number, "trigger": trigger, "scheduled_at": now,
                 "started_at": now, "finished_at": None, "lateness_ms": 0.0, "error": None, "tasks": tasks}
        self.settle(cycle)
        flow["cycles"][number] = cycle
        return cycle

    def log(self, task: dict[str, Any], level: str, message: str) -> None:
        self.logs.append({"id": len(self.logs) + 1, "task_id": task["id"], "node_id": task["node_id"],
                          "flow_id": task["flow_id"], "cycle": task["cycle"], "level": level, "message": message,
                          "created_at": time.time()})

    @staticmethod
    def settle(cycle: dict[str, Any]) -> None:
        statuses = [t["status"] for t in cycle["tasks"]]
        if all(s in TERMINAL for s in statuses):
            cycle["status"] = "cancelled" if "cancelled" in statuses else "completed"
            cycle["finished_at"] = cycle["finished_at"] or time.time()
        else:
            cycle["status"] = "running"

    @staticmethod
    def summary(cycle: dict[str, Any]) -> dict[str, Any]:
        counts: dict[str, int] = {}
        components: dict[str, list[str]] = {}
        for task in cycle["tasks"]:
            counts[task["status"]] = counts.get(task["status"], 0) + 1
            components.setdefault(str(task["component_id"]), []).append(task["status"])
        state = {k: ("completed" if all(s == "completed" for s in v) else
                     "cancelled" if "cancelled" in v else "running") for k, v in components.items()}
        return {**{k: v for k, v in cycle.items() if k != "tasks"}, "counts": counts, "components": state}

    def cancel(self, cycle: dict[str, Any], component: int | None, reason: str) -> int:
        cancelled = 0
        for task in cycle["tasks"]:
            if task["status"] not in TERMINAL and (component is None or task["component_id"] == component):
                task["status"], task["error_message"] = "cancelled", reason
                cancelled += 1
                self.log(task, "WARNING", f"{task['node_id']} cancelled: {reason}")
        self.settle(cycle)
        return cancelled

    def listing(self, flow: dict[str, Any]) -> dict[str, Any]:
        spec: FlowSpec = flow["spec"]
        last = max(flow["cycles"], default=None)
        o = spec.options
        return {"flow_id": spec.flow_id, "name": o.name or spec.flow_id, "status": flow["status"],
                "trigger": spec.trigger, "cycle_interval": o.cycle_interval, "cron": o.cron, "priority": o.priority,
                "next_run_at": time.time() + 60 if flow["status"] == "active" and o.cycle_interval else None,
                "last_cycle": last, "last_status": None if last is None else flow["cycles"][last]["status"]}

    # -- methods ------------------------------------------------------------------------------------------
    def _register(self, registry: MethodRegistry) -> None:
        me = self

        @registry.method("flow.run", idempotent=True)
        def run(params: Open) -> dict[str, Any]:
            spec = parse_flow(params.model_dump(), node_type)
            with me.lock:
                flow = me.flows.setdefault(spec.flow_id, {"cycles": {}})
                flow.update(spec=spec, status="active" if spec.options.start else "stopped",
                            version=flow.get("version", 0) + 1)
                if flow["status"] == "active" and not flow["cycles"]:
                    me.new_cycle(flow, 0, spec.trigger)
                listing = me.listing(flow)
            return {"flow_id": spec.flow_id, "status": flow["status"], "version": flow["version"],
                    "components": [{"component_id": i, "nodes": list(c)} for i, c in enumerate(spec.components)],
                    "next_run_at": listing["next_run_at"]}

        @registry.method("flow.status", idempotent=True)
        def status(params: Open) -> dict[str, Any]:
            with me.lock:
                flow = me.flow(str(params.flow_id))  # type: ignore[attr-defined]
                spec: FlowSpec = flow["spec"]
                cycles = [me.summary(flow["cycles"][n]) for n in sorted(flow["cycles"], reverse=True)]
                counts = {k: sum(1 for c in cycles if c["status"] == k)
                          for k in ("completed", "failed", "missed", "skipped", "cancelled")}
                return {**me.listing(flow), "max_concurrent": spec.options.max_concurrent,
                        "overlap": spec.options.overlap, "counts": counts,
                        "running_cycles": [c["cycle"] for c in cycles if c["status"] == "running"],
                        "recent_cycles": cycles[: int(getattr(params, "cycles", 10))],
                        "definition": spec.definition()["flow_json"],
                        "components": [{"component_id": i, "nodes": list(c)} for i, c in enumerate(spec.components)]}

        @registry.method("flow.list", idempotent=True)
        def listing(params: Open) -> dict[str, Any]:
            with me.lock:
                rows = [me.listing(f) for _, f in sorted(me.flows.items())]
            wanted = getattr(params, "status", None)
            rows = [r for r in rows if wanted is None or r["status"] == wanted]
            offset, limit = int(getattr(params, "offset", 0)), int(getattr(params, "limit", 100))
            return {"flows": rows[offset: offset + limit], "total": len(rows)}

        @registry.method("flow.cycle", idempotent=True)
        def cycle(params: Open) -> dict[str, Any]:
            with me.lock:
                flow = me.flow(str(params.flow_id))  # type: ignore[attr-defined]
                number = getattr(params, "cycle", None)
                if number is None:
                    number = max(flow["cycles"], default=-1) + 1
                elif number in flow["cycles"]:
                    raise InvalidParams(f"cycle {number} of {params.flow_id!r} exists already",  # type: ignore[attr-defined]
                                        details=[{"field": "cycle", "type": "invalid_field",
                                                  "message": f"cycle {number} exists already"}])
                created = me.new_cycle(flow, int(number), "manual")
            return {"flow_id": created["flow_id"], "cycle": created["cycle"], "status": created["status"],
                    "scheduled_at": created["scheduled_at"]}

        @registry.method("flow.cycle.get", idempotent=True)
        def cycle_get(params: Open) -> dict[str, Any]:
            with me.lock:
                found = me.flow(str(params.flow_id))["cycles"].get(params.cycle)  # type: ignore[attr-defined]
                if found is None:
                    raise not_found(f"cycle {params.cycle}")  # type: ignore[attr-defined]
                return {**me.summary(found), "tasks": [dict(t) for t in found["tasks"]]}

        @registry.method("flow.cycle.retry", idempotent=True)
        def cycle_retry(params: Open) -> dict[str, Any]:
            with me.lock:
                found = me.flow(str(params.flow_id))["cycles"].get(params.cycle)  # type: ignore[attr-defined]
                if found is None:
                    raise not_found(f"cycle {params.cycle}")  # type: ignore[attr-defined]
                for task in found["tasks"]:
                    if task["status"] in ("failed", "skipped", "cancelled"):
                        task["status"], task["attempt"] = "queued", task["attempt"] + 1
                me.settle(found)
                return me.summary(found)

        @registry.method("flow.cycles", idempotent=True)
        def cycles(params: Open) -> dict[str, Any]:
            with me.lock:
                flow = me.flow(str(params.flow_id))  # type: ignore[attr-defined]
                before = getattr(params, "before", None)
                numbers = [n for n in sorted(flow["cycles"], reverse=True) if before is None or n < before]
                return {"cycles": [me.summary(flow["cycles"][n]) for n in numbers[: int(getattr(params, "limit", 50))]]}

        @registry.method("flow.stop", idempotent=True)
        def stop(params: Open) -> dict[str, Any]:
            number, component = getattr(params, "cycle", None), getattr(params, "component", None)
            with me.lock:
                flow = me.flow(str(params.flow_id))  # type: ignore[attr-defined]
                if number is None:
                    flow["status"] = "stopped"
                    n = sum(me.cancel(c, None, "flow stopped") for c in flow["cycles"].values())
                    return {"flow_id": params.flow_id, "status": "stopped", "cancelled_tasks": n}  # type: ignore[attr-defined]
                found = flow["cycles"].get(number)
                if found is None:
                    raise not_found(f"cycle {number}")
                n = me.cancel(found, component, "stopped by request")
                return {"flow_id": params.flow_id, "cycle": number, "component": component,  # type: ignore[attr-defined]
                        "cancelled_tasks": n}

        @registry.method("flow.logs", idempotent=True)
        def logs(params: Open) -> dict[str, Any]:
            me.flow(str(params.flow_id))  # type: ignore[attr-defined]
            filters = {k: getattr(params, k, None) for k in ("flow_id", "cycle", "node_id", "task_id")}
            after, limit = int(getattr(params, "after_id", 0)), int(getattr(params, "limit", 200))
            rows = [r for r in me.logs if r["id"] > after
                    and all(v is None or r[k] == v for k, v in filters.items())]
            return {"logs": rows[:limit]}

        @registry.method("flow.stats", idempotent=True)
        def stats(params: Open) -> dict[str, Any]:
            with me.lock:
                tasks = [t for f in me.flows.values() for c in f["cycles"].values() for t in c["tasks"]]
                running = sum(1 for t in tasks if t["status"] == "running")
                return {"slots": 4, "slots_used": running, "queued": 0, "running": running,
                        "flows": len(me.flows), "active_flows": sum(f["status"] == "active" for f in me.flows.values()),
                        "cycles_started": sum(len(f["cycles"]) for f in me.flows.values()), "cycles_missed": 0,
                        "preemptions": 0, "dispatched": len(tasks), "dispatch_latency_ms": {"p50": 0.1, "p99": 0.2},
                        "start_lateness_ms": {"p50": 1.0, "p99": 2.0}}

        @registry.method("node.status", idempotent=True)
        def node_status(params: Open) -> dict[str, Any]:
            node_id, flow_id = str(params.node_id), getattr(params, "flow_id", None)  # type: ignore[attr-defined]
            with me.lock:
                latest = []
                for fid, flow in sorted(me.flows.items()):
                    found = [t for n in sorted(flow["cycles"], reverse=True) for t in flow["cycles"][n]["tasks"]
                             if t["node_id"] == node_id and (flow_id is None or fid == flow_id)]
                    latest.extend(found[:1])
            if not latest:
                raise not_found(f"node {node_id!r}")
            return {"node_id": node_id, "tasks": latest}

        @registry.method("node.stop", idempotent=True)
        def node_stop(params: Open) -> dict[str, Any]:
            node_id, flow_id = str(params.node_id), getattr(params, "flow_id", None)  # type: ignore[attr-defined]
            n = 0
            with me.lock:
                for fid, flow in me.flows.items():
                    for c in flow["cycles"].values():
                        for task in c["tasks"]:
                            if task["node_id"] == node_id and (flow_id is None or fid == flow_id) \
                                    and task["status"] not in TERMINAL:
                                task["status"] = "cancelled"
                                n += 1
                        me.settle(c)
            return {"node_id": node_id, "cancelled_tasks": n}

        @registry.method("node.execute", idempotent=True)
        def execute(params: Open) -> dict[str, Any]:
            body = params.model_dump()

            def caller(method: str, call_params: dict[str, Any], _timeout: float, _rid: str | None) -> Any:
                assert method == "kline.history", method
                return candles(call_params["symbol"], call_params["interval"], int(call_params["limit"]))

            ctx = LocalContext(flow_id=str(body.get("flow_id") or "local"), cycle=int(body.get("cycle", 0)),
                               node_id=str(body["node_id"]), component_id=int(body.get("component_id", 0)),
                               caller=caller)
            started = time.perf_counter()
            outputs = run_node(str(body["node_type"]), dict(body.get("config") or {}), dict(body.get("inputs") or {}),
                               ctx)
            return {"node_id": body["node_id"], "status": "completed", "outputs": outputs, "logs": ctx.logs,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3)}
