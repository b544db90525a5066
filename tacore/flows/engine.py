"""The flow engine: the core and the store behind one lock, with the commands and reads ``flow.*`` serves.

No sockets here: the scheduler process (``workers/flows/scheduler.py``) owns the broker connection, calls
``step`` each loop turn and sends the actions it returns; the ``flow.*`` handlers call the commands from the
worker thread. Commands leave their actions in ``pending`` for the loop and ``wake`` it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from tacore.errors import Conflict, InvalidParams
from tacore.flows.core import Action, Core, CoreError, Cycle, Dispatch, next_tick
from tacore.flows.model import FlowSpec, parse_flow
from tacore.flows.nodes import node_type
from tacore.flows.store import FlowStore

log = logging.getLogger("tacore.flows")

#: write-behind: task updates reach the store at least this often (cycle creations are written at once,
#: before any of their tasks is dispatched)
FLUSH_INTERVAL_S = 0.02


def not_found(message: str) -> InvalidParams:
    return InvalidParams(message, details=[{"type": "not_found", "message": message}])


def _core_error(exc: CoreError) -> InvalidParams:
    return not_found(str(exc)) if exc.kind == "not_found" else InvalidParams(str(exc))


class FlowEngine:
    def __init__(self, store: FlowStore, core: Core, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.core = core
        self.clock = clock
        self.lock = threading.RLock()
        self.pending: list[Action] = []
        self.wake: Callable[[], None] = lambda: None
        self._last_flush = 0.0
        self.lateness_ms: list[float] = []  # cycle start lateness of scheduled cycles (recent)
        self.dispatch_ms: list[float] = []

    # -- start-up ----------------------------------------------------------------------------------
    def restore(self) -> list[Action]:
        """Load flows and unfinished cycles after a (re)start; the actions resend what was in flight."""
        now = self.clock()
        actions: list[Action] = []
        with self.lock:
            for row in self.store.load_flows():
                try:
                    spec = parse_flow(row["definition"], node_type)
                except InvalidParams as exc:
                    log.error("flow %s no longer validates (%s); left stopped", row["flow_id"], exc.message)
                    continue
                flow = self.core.register(spec, now)
                flow.status, flow.next_cycle = row["status"], row["next_cycle"]
                flow.missed_total, flow.version, flow.last_tick = row["missed_total"], row["version"], row["last_tick"]
                if flow.status == "active" and spec.trigger == "schedule":
                    flow.next_run_at = next_tick(spec, row["last_tick"] if row["last_tick"] else now)
                    self.core.hint(flow.next_run_at)
                else:
                    flow.next_run_at = None
            for cycle in self.store.open_cycles():
                if cycle.flow_id in self.core.flows:
                    actions += self.core.restore_cycle(cycle, now)
            self.core.dirty_flows.clear()  # as loaded
            self.store.flush(self.core, now)
        log.info("flow engine restored %d flows, %d cycles in progress, %d tasks asked again",
                 len(self.core.flows), len(self.core.cycles), sum(isinstance(a, Dispatch) for a in actions))
        return actions

    # -- the loop ----------------------------------------------------------------------------------
    def step(self, replies: list[tuple[str, dict[str, Any]]], events: list[dict[str, Any]],
             preempt_again: list[tuple[str, set[str]]] | None = None) -> list[Action]:
        """One loop turn: replies, events, leases, ticks, dispatch; the store written before new cycles run.
        ``preempt_again``: urgent tasks whose preemption freed no worker (the victim was queued at the broker)."""
        with self.lock:
            now = self.clock()
            core = self.core
            actions, self.pending = self.pending, []
            for urgent_id, at_workers in preempt_again or ():
                actions += core.preempt_again(urgent_id, now, at_workers)
            for request_id, reply in replies:
                actions += core.on_reply(request_id, reply, now)
            for event in events:
                actions += self._event(event, now)
            if core.by_request:
                actions += core.expire(now)
            actions += core.due(now)
            actions += core.schedule(now)
            new = self.store.unwritten(core.dirty_cycles)
            for cycle in new:
                if cycle.trigger == "schedule" and cycle.status == "running" and cycle.scheduled_at is not None:
                    self._sample(self.lateness_ms, ((cycle.started_at or now) - cycle.scheduled_at) * 1000.0)
            if now - self._last_flush >= FLUSH_INTERVAL_S or len(core.dirty_tasks) > 20_000:
                actions = self.flush(actions, now)
            elif new:  # the new cycles before any of their requests; their tasks with the next write
                actions = self.flush(actions, now, tasks_too=False)
            return actions

    def flush(self, actions: list[Action], now: float, *, tasks_too: bool = True,
              wait: bool = False) -> list[Action]:
        """Hand what the core changed to the store (new cycles written now, the rest behind); ``actions``
        without those of cycles the store refused."""
        refused = self.store.flush(self.core, now, tasks_too=tasks_too, wait=wait)
        if tasks_too:
            self._last_flush = now
        if not refused:
            return actions
        dropped: set[str] = set()
        for cycle in refused:
            log.warning("cycle %s/%d (%s) exists already in the store: not run here", cycle.flow_id, cycle.cycle,
                        cycle.trigger_key)
            dropped |= self.core.forget(cycle)
        return [a for a in actions if a.task.id not in dropped]

    def next_wakeup(self) -> float | None:
        with self.lock:
            wake = self.core.next_wakeup()
            if self.core.dirty_tasks or self.core.logs:
                soon = self._last_flush + FLUSH_INTERVAL_S
                wake = soon if wake is None else min(wake, soon)
            return wake

    def _event(self, event: dict[str, Any], now: float) -> list[Action]:
        symbol, interval = str(event.get("symbol", "")), str(event.get("interval", ""))
        candle = event.get("candle") or {}
        actions: list[Action] = []
        for flow in self.core.flows.values():
            matches = flow.spec.options.trigger_filter.matches(symbol, interval)
            if flow.status != "active" or flow.spec.trigger != "event" or not matches:
                continue
            key = f"event:{symbol}.{interval}:{candle.get('open_time')}"
            _, more = self.core.trigger(flow.id, now, "event", key, None, event=event)
            actions += more
        return actions

    @staticmethod
    def _sample(into: list[float], value: float) -> None:
        into.append(value)
        if len(into) > 10_000:
            del into[:5_000]

    def _submit(self, actions: list[Action]) -> None:
        self.pending += actions
        self.wake()

    # -- commands (flow.* handlers) ------------------------------------------------------------------
    def run(self, raw: dict[str, Any]) -> dict[str, Any]:
        spec = parse_flow(raw, node_type)
        with self.lock:
            now = self.clock()
            flow = self.core.register(spec, now)
            self.store.flush(self.core, now)
            self.wake()
            return {"flow_id": flow.id, "status": flow.status, "version": flow.version, "trigger": spec.trigger,
                    "components": _components(spec), "next_run_at": flow.next_run_at}

    def stop(self, flow_id: str, cycle: int | None, component: int | None, reason: str | None) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            try:
                if cycle is None:
                    if component is not None:
                        raise InvalidParams("stopping a component needs its cycle")
                    actions = self.core.stop_flow(flow_id, now, reason or "flow stopped")
                    out: dict[str, Any] = {"flow_id": flow_id, "status": "stopped"}
                else:
                    actions = self.core.stop_cycle(flow_id, cycle, component, now, reason or "stopped")
                    out = {"flow_id": flow_id, "cycle": cycle, "component": component}
            except CoreError as exc:
                if cycle is not None and exc.kind == "not_found" and flow_id in self.core.flows:
                    self._finished_cycle(flow_id, cycle, component, now)  # raises when it exists
                raise _core_error(exc) from None
            self._submit(self.flush(actions, now))
            return {**out, "cancelled_tasks": len(actions)}

    def _finished_cycle(self, flow_id: str, number: int, component: int | None, now: float) -> None:
        """Stopping a cycle the core does not hold: a finished one is a ``CONFLICT`` (409) naming its end, an
        unknown one (or a component it does not have) is left to the caller's ``not_found`` (404)."""
        self.store.flush(self.core, now)
        rows = [r for r in self.store.cycle_rows(flow_id, 1, number + 1) if r["cycle"] == number]
        if not rows:
            return
        if component is not None and component not in {t["component_id"] for t in
                                                       self.store.task_rows(flow_id, number)}:
            raise not_found(f"cycle {number} of {flow_id!r} has no component {component}")
        status = rows[0]["status"]
        what = f"cycle {number} of {flow_id!r}" if component is None else \
            f"component {component} of cycle {number} of {flow_id!r}"
        raise Conflict(f"{what}: the cycle already ended ({status}); nothing to stop",
                       details=[{"type": "conflict", "status": status}])

    def trigger(self, flow_id: str, number: int | None, request_id: str | None) -> dict[str, Any]:
        """A manual cycle; a retry of the same request (same request_id) answers the cycle it made."""
        with self.lock:
            now = self.clock()
            key = f"manual:{request_id}" if request_id else f"manual:{now:.6f}"
            try:
                cycle, actions = self.core.trigger(flow_id, now, "manual", key, None, number)
            except CoreError as exc:
                raise _core_error(exc) from None
            if cycle is None:
                found = [c for c in self.core.flows[flow_id].open.values() if c.trigger_key == key]
                if found:
                    cycle = found[0]
                else:
                    rows = [r for r in self.store.cycle_rows(flow_id, 1000) if r["trigger_key"] == key]
                    if not rows:
                        raise InvalidParams(f"cycle for {key} was refused")
                    return _cycle_summary(rows[0], None)
            actions = self.flush(actions + self.core.schedule(now), now)
            self._submit(actions)
            if number is not None and self.core.cycles.get((flow_id, number)) is not cycle and not cycle.terminal:
                # the store refused it: that number was used by a cycle that ended (the core holds only the
                # open ones), so nothing of it runs and the caller hears so
                raise InvalidParams(f"cycle {number} of {flow_id!r} exists already")
            return {"flow_id": flow_id, "cycle": cycle.cycle, "status": cycle.status, "scheduled_at": None,
                    "started_at": cycle.started_at}

    def retry(self, flow_id: str, number: int) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            self.store.flush(self.core, now)
            loaded = None if (flow_id, number) in self.core.cycles else self.store.cycle(flow_id, number)
            try:
                cycle = self.core.retry_cycle(flow_id, number, now, loaded)
            except CoreError as exc:
                raise _core_error(exc) from None
            self._submit(self.flush(self.core.schedule(now), now))
            return _live_summary(cycle)

    def stop_node(self, node_id: str, flow_id: str | None) -> dict[str, Any]:
        with self.lock:
            actions = self.core.stop_node(node_id, flow_id, self.clock())
            self._submit(self.flush(actions, self.clock()))
            return {"node_id": node_id, "cancelled_tasks": len(actions)}

    # -- reads ---------------------------------------------------------------------------------------
    def _synced(self) -> None:
        """The store holds everything the core changed so far. The rows are taken under the lock; the wait
        for the writing thread is not (the loop goes on meanwhile, its later batches queued behind these)."""
        with self.lock:
            self.store.flush(self.core, self.clock(), wait=False)
        self.store.drain()
        with self.lock:
            self.store.check()

    def status(self, flow_id: str, recent: int) -> dict[str, Any]:
        self._synced()
        with self.lock:
            flow = self.core.flows.get(flow_id)
            if flow is None:
                raise not_found(f"no flow {flow_id!r}")
            spec = flow.spec
            running = sorted(flow.open)
            base = {"flow_id": flow_id, "name": spec.options.name or flow_id, "status": flow.status,
                    "trigger": spec.trigger, "cycle_interval": spec.options.cycle_interval, "cron": spec.options.cron,
                    "priority": spec.options.priority, "max_concurrent": spec.options.max_concurrent,
                    "overlap": spec.options.overlap, "next_run_at": flow.next_run_at, "version": flow.version,
                    "running_cycles": running, "running_tasks": flow.running, "last_cycle": flow.next_cycle - 1
                    if flow.next_cycle else None, "definition": spec.definition()["flow_json"],
                    "components": _components(spec)}
        rows = self.store.cycle_rows(flow_id, recent)
        counts = self.store.task_counts(flow_id, [r["cycle"] for r in rows])
        by_status = self.store.cycle_counts(flow_id)
        by_status["missed"] = max(by_status.get("missed", 0), flow.missed_total)
        return {**base, "counts": by_status, "recent_cycles": [_cycle_summary(r, counts.get(r["cycle"])) for r in rows]}

    def list(self, status: str | None, limit: int, offset: int) -> dict[str, Any]:
        self._synced()
        rows, total = self.store.flow_rows(status, limit, offset)
        out = []
        for row in rows:
            last = self.store.cycle_rows(row["flow_id"], 1)
            definition = row["definition"]
            out.append({"flow_id": row["flow_id"], "name": row["name"] or row["flow_id"], "status": row["status"],
                        "trigger": row["trigger"], "cycle_interval": definition.get("cycle_interval"),
                        "cron": definition.get("cron"), "priority": row["priority"],
                        "next_run_at": row["next_run_at"], "last_cycle": last[0]["cycle"] if last else None,
                        "last_status": last[0]["status"] if last else None,
                        "nodes": len(definition.get("flow_json", {}).get("nodes", []))})
        return {"flows": out, "total": total}

    def cycles(self, flow_id: str, limit: int, before: int | None) -> dict[str, Any]:
        self._known(flow_id)
        rows = self.store.cycle_rows(flow_id, limit, before)
        counts = self.store.task_counts(flow_id, [r["cycle"] for r in rows])
        return {"flow_id": flow_id, "cycles": [_cycle_summary(r, counts.get(r["cycle"])) for r in rows]}

    def cycle(self, flow_id: str, number: int) -> dict[str, Any]:
        """One cycle with its tasks. A cycle in progress is answered from the core, which holds it whole and
        fresher than its rows (written behind): no write waited for, no query, the loop's lock held only to
        copy its tasks' fields (a client polls this while a chain runs: each wait for the store was a stalled
        hop; building the rows under the lock kept the loop waiting ~175 us for a 200-node cycle, the copies
        ~40 us)."""
        row: dict[str, Any] | None = None
        fields: list[dict[str, Any]] = []
        with self.lock:
            if flow_id not in self.core.flows:
                raise not_found(f"no flow {flow_id!r}")
            live = self.core.cycles.get((flow_id, number))
            if live is not None:
                row = _cycle_fields(live)
                fields = [vars(t).copy() for t in live.tasks.values()]
        if row is None:
            self._synced()
            rows = [r for r in self.store.cycle_rows(flow_id, 1, number + 1) if r["cycle"] == number]
            if not rows:
                raise not_found(f"no cycle {number} of {flow_id!r}")
            row = rows[0]
            by_node = {t["node_id"]: t for t in self.store.task_rows(flow_id, number)}
            tasks = [_task_out(t) for t in sorted(by_node.values(), key=lambda r: (r["created_at"], r["node_id"]))]
        else:
            fields.sort(key=lambda f: (f["created_at"], f["node_id"]))
            tasks = [_task_out(_live_task_row(f)) for f in fields]
        summary = _cycle_summary(row, _counts(tasks))
        components: dict[str, str] = {}
        for task in tasks:
            key = str(task["component_id"])
            components[key] = _worst(components.get(key), task["status"])
        return {**summary, "components": components, "tasks": tasks}

    def logs(self, flow_id: str, cycle: int | None, node_id: str | None, task_id: str | None, after_id: int,
             limit: int) -> dict[str, Any]:
        self._known(flow_id)
        rows = self.store.log_rows(flow_id, cycle, node_id, task_id, after_id, limit)
        return {"flow_id": flow_id, "logs": rows}

    def node_status(self, node_id: str, flow_id: str | None) -> dict[str, Any]:
        self._synced()
        rows = self.store.node_rows(node_id, flow_id)
        if not rows:
            raise not_found(f"no task of node {node_id!r}" + (f" in flow {flow_id!r}" if flow_id else ""))
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest.setdefault(row["flow_id"], _task_out(row))
        return {"node_id": node_id, "tasks": list(latest.values())}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            core = self.core
            queued = sum(len(q) for q in core.queues) + len(core.delayed) + sum(len(p) for p in core.parked.values())
            return {"slots": core.slots, "slots_used": core.used, "queued": queued, "running": len(core.by_request),
                    "flows": len(core.flows), "active_flows": sum(f.status == "active" for f in core.flows.values()),
                    "open_cycles": len(core.cycles), **core.stats,
                    "start_lateness_ms": _percentiles(self.lateness_ms)}

    def _known(self, flow_id: str) -> None:
        self._synced()
        with self.lock:
            if flow_id not in self.core.flows:
                raise not_found(f"no flow {flow_id!r}")


def _components(spec: FlowSpec) -> list[dict[str, Any]]:
    return [{"component_id": n, "nodes": list(members)} for n, members in enumerate(spec.components)]


_RANK = {"failed": 6, "cancelled": 5, "running": 4, "queued": 3, "pending": 2, "skipped": 1, "completed": 0}


def _worst(a: str | None, b: str) -> str:
    if a is None:
        return b
    return a if _RANK.get(a, 0) >= _RANK.get(b, 0) else b


def _counts(tasks: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for task in tasks:
        out[task["status"]] = out.get(task["status"], 0) + 1
    return out


def _cycle_summary(row: dict[str, Any], counts: dict[str, int] | None) -> dict[str, Any]:
    lateness = None
    if row.get("scheduled_at") is not None and row.get("started_at") is not None:
        lateness = round((row["started_at"] - row["scheduled_at"]) * 1000.0, 3)
    return {"flow_id": row["flow_id"], "cycle": row["cycle"], "status": row["status"], "trigger": row["trigger"],
            "scheduled_at": row["scheduled_at"], "started_at": row["started_at"], "finished_at": row["finished_at"],
            "lateness_ms": lateness, "error": row["error"], "counts": counts or {}}


def _cycle_fields(cycle: Cycle) -> dict[str, Any]:
    """A cycle as its ``flow_cycles`` row reads (the fields ``_cycle_summary`` takes)."""
    return {"flow_id": cycle.flow_id, "cycle": cycle.cycle, "status": cycle.status, "trigger": cycle.trigger,
            "scheduled_at": cycle.scheduled_at, "started_at": cycle.started_at, "finished_at": cycle.finished_at,
            "error": cycle.error}


def _live_summary(cycle: Cycle) -> dict[str, Any]:
    return {**_cycle_fields(cycle), "counts": cycle.counts()}


def _live_task_row(task: dict[str, Any]) -> dict[str, Any]:
    """A task of the core (its fields, copied) as its ``tasks`` row reads."""
    return {"id": task["id"], "type": task["type"], "status": task["status"], "input_data": task["input_data"],
            "output_data": task["output_data"], "error_message": task["error_message"],
            "created_at": task["created_at"],
            "updated_at": task["finished_at"] or task["started_at"] or task["queued_at"] or task["created_at"],
            "flow_id": task["flow_id"], "cycle": task["cycle"], "node_id": task["node_id"],
            "component_id": task["component"], "attempt": task["attempt"], "preemptions": task["preemptions"],
            "worker": task["worker"], "priority": task["priority"], "request_id": task["request_id"],
            "timeout_ms": task["timeout_ms"], "retries": task["retries"], "queued_at": task["queued_at"],
            "started_at": task["started_at"], "finished_at": task["finished_at"]}


def _task_out(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    started, finished = row.get("started_at"), row.get("finished_at")
    out["duration_ms"] = round((finished - started) * 1000.0, 3) if started and finished else None
    return out


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {"p50": round(ordered[len(ordered) // 2], 3), "p99": round(ordered[int(len(ordered) * 0.99)], 3),
            "max": round(ordered[-1], 3)}
