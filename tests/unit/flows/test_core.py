"""The scheduler's pure core: readiness along edges, skips, failures, retries, slots, preemption, overlap."""

from __future__ import annotations

import random
from typing import Any

from tacore.flows.core import Cancel, Core, Dispatch, Preempt, next_tick
from tacore.flows.model import FlowSpec, parse_flow
from tacore.flows.nodes import node_type


def flow(flow_id: str = "f", nodes: list[tuple[str, str]] | None = None, edges: list[Any] | None = None,
         **options: Any) -> FlowSpec:
    nodes = nodes or [("a", "noop"), ("b", "noop")]
    pairs: list[Any] = edges if edges is not None else [("a", "b")]
    raw_edges = [{"source": e[0], "target": e[1], **({"source_handle": e[2]} if len(e) > 2 else {})} for e in pairs]
    return parse_flow({"flow_id": flow_id, **options, "flow_json": {
        "nodes": [{"id": n, "type": "action_node" if t != "cond" else "condition_node",
                   "config": {"action": t} if t != "cond" else {"op": "gt", "left": "input", "right": 0}}
                  for n, t in nodes], "edges": raw_edges}}, node_type)


def ok(outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": "success", "data": {"outputs": {"output": 1} if outputs is None else outputs, "logs": []}}


def err(code: str = "INTERNAL") -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": "boom"}}


def dispatched(actions: list[Any]) -> list[str]:
    return [a.task.node_id for a in actions if isinstance(a, Dispatch)]


def test_a_chain_runs_node_after_node_with_outputs_along_the_edge() -> None:
    core = Core(4)
    core.register(flow(), 0.0)
    cycle, _ = core.trigger("f", 0.0, "manual", "m0")
    assert cycle is not None and dispatched(core.schedule(0.0)) == ["a"]
    core.on_reply(cycle.tasks["a"].request_id or "", ok({"output": 42}), 0.1)
    assert dispatched(core.schedule(0.1)) == ["b"]
    assert cycle.tasks["b"].input_data == {"input": 42}
    core.on_reply(cycle.tasks["b"].request_id or "", ok(), 0.2)
    assert cycle.status == "completed" and core.used == 0
    core.check()


def test_a_failed_node_skips_its_downstream_and_fails_the_cycle() -> None:
    core = Core(4)
    core.register(flow(), 0.0)
    cycle, _ = core.trigger("f", 0.0, "manual", "m0")
    assert cycle is not None
    core.schedule(0.0)
    core.on_reply(cycle.tasks["a"].request_id or "", err("INVALID_PARAMS"), 0.1)
    assert cycle.tasks["b"].status == "skipped" and cycle.status == "failed"


def test_the_branch_not_taken_is_skipped_and_the_cycle_completes() -> None:
    core = Core(4)
    core.register(flow(nodes=[("c", "cond"), ("yes", "noop"), ("no", "noop")],
                       edges=[("c", "yes", "true"), ("c", "no", "false")]), 0.0)
    cycle, _ = core.trigger("f", 0.0, "manual", "m0")
    assert cycle is not None
    core.schedule(0.0)
    core.on_reply(cycle.tasks["c"].request_id or "", ok({"true": {"result": True}}), 0.1)
    assert dispatched(core.schedule(0.1)) == ["yes"] and cycle.tasks["no"].status == "skipped"
    core.on_reply(cycle.tasks["yes"].request_id or "", ok(), 0.2)
    assert cycle.status == "completed"


def test_retries_back_off_and_use_a_new_request_id() -> None:
    core = Core(4, rng=random.Random(1))
    core.register(flow(retries=2), 0.0)
    cycle, _ = core.trigger("f", 0.0, "manual", "m0")
    assert cycle is not None
    core.schedule(0.0)
    first = cycle.tasks["a"].request_id
    core.on_reply(first or "", err("UNAVAILABLE"), 1.0)
    assert dispatched(core.schedule(1.1)) == []  # still backing off (0.5 s +- 20 %)
    assert dispatched(core.schedule(1.7)) == ["a"] and cycle.tasks["a"].request_id != first
    assert cycle.tasks["a"].attempt == 2


def test_slots_and_max_concurrent_bound_what_runs() -> None:
    core = Core(3)
    nodes = [(f"n{i}", "noop") for i in range(6)]
    core.register(flow("x", nodes=nodes, edges=[], max_concurrent=2), 0.0)
    core.register(flow("y", nodes=nodes, edges=[]), 0.0)
    core.trigger("x", 0.0, "manual", "m")
    core.trigger("y", 0.0, "manual", "m")
    actions = core.schedule(0.0)
    assert len(actions) == 3 and core.flows["x"].running == 2
    core.check()


def test_a_priority_0_node_preempts_the_lowest_priority_running_one() -> None:
    core = Core(2)
    core.register(flow("low", nodes=[("a", "noop"), ("b", "noop")], edges=[], priority=9), 0.0)
    core.register(flow("mid", nodes=[("a", "noop")], edges=[], priority=5), 0.0)
    core.register(flow("hi", nodes=[("a", "noop")], edges=[], priority=0), 0.0)
    core.trigger("mid", 0.0, "manual", "m")
    core.trigger("low", 0.0, "manual", "m")
    core.schedule(0.0)
    core.trigger("hi", 1.0, "manual", "m")
    actions = core.schedule(1.0)
    preempted = [a for a in actions if isinstance(a, Preempt)]
    assert [(a.task.flow_id) for a in preempted] == ["low"]
    assert [a.task.flow_id for a in actions if isinstance(a, Dispatch)] == ["hi"]
    assert preempted[0].task.status == "queued" and preempted[0].task.attempt == 1  # no retry spent
    core.check()


def test_overlap_skip_records_the_tick_as_missed() -> None:
    core = Core(4)
    core.register(flow(cycle_interval="1m"), 0.0)
    core.due(60.0)
    core.due(120.0)
    statuses = sorted((c.cycle, c.status) for c in core.dirty_cycles.values())
    assert statuses == [(0, "running"), (1, "missed")]


def test_overlap_buffer_one_runs_the_waiting_tick_when_the_cycle_ends() -> None:
    core = Core(4)
    core.register(flow(nodes=[("a", "noop")], edges=[], cycle_interval="1s", overlap="buffer_one"), 0.0)
    core.due(1.0)
    core.due(2.0)
    core.due(3.0)
    core.schedule(3.0)
    first = core.flows["f"].open[0]
    core.on_reply(first.tasks["a"].request_id or "", ok(), 3.1)
    assert sorted(core.flows["f"].open) == [2] and core.dirty_cycles[("f", 2)].scheduled_at == 2.0
    assert core.dirty_cycles[("f", 1)].status == "missed"  # the tick at 3 s: one was already waiting


def test_overlap_cancel_other_cancels_the_running_cycle() -> None:
    core = Core(4)
    core.register(flow(nodes=[("a", "noop")], edges=[], cycle_interval="1s", overlap="cancel_other"), 0.0)
    core.due(1.0)
    core.schedule(1.0)
    actions = core.due(2.0)
    assert [type(a) for a in actions] == [Cancel] and core.dirty_cycles[("f", 0)].status == "cancelled"


def test_ticks_are_aligned_to_the_wall_clock() -> None:
    spec = flow(cycle_interval="1m")
    assert next_tick(spec, 1_000_000_007.5) == 1_000_000_020.0  # the next whole minute
    assert next_tick(flow(cron="*/5 * * * *"), 1_000_000_007.5) == 1_000_000_200.0


def test_ticks_missed_while_down_are_recorded_not_run() -> None:
    core = Core(4)
    core.register(flow(cycle_interval="1m"), 0.0)
    core.due(600.5)
    cycles = sorted(core.dirty_cycles.values(), key=lambda c: c.cycle)
    assert [c.status for c in cycles] == ["missed"] * 9 + ["running"]


def test_a_scheduled_time_makes_one_cycle_only() -> None:
    core = Core(4)
    core.register(flow(cycle_interval="1m"), 0.0)
    core.due(60.0)
    cycle, _ = core.trigger("f", 60.0, "schedule", "schedule:60.000", 60.0)
    assert cycle is None and len(core.dirty_cycles) == 1


def test_stopping_a_component_cancels_only_its_tasks() -> None:
    core = Core(4)
    core.register(flow(nodes=[("a", "noop"), ("b", "noop"), ("c", "noop")], edges=[("a", "b")]), 0.0)
    cycle, _ = core.trigger("f", 0.0, "manual", "m")
    assert cycle is not None
    core.schedule(0.0)
    actions = core.stop_cycle("f", 0, 1, 0.5)
    assert [a.task.node_id for a in actions] == ["c"] and cycle.tasks["a"].status == "running"
    core.check()


def test_a_lost_reply_is_asked_again_with_the_same_request_id() -> None:
    core = Core(4)
    core.register(flow(nodes=[("a", "noop")], edges=[], timeout_ms=1000), 0.0)
    cycle, _ = core.trigger("f", 0.0, "manual", "m")
    assert cycle is not None
    core.schedule(0.0)
    rid = cycle.tasks["a"].request_id
    actions = core.expire(6.5)
    assert [(a.resend, a.task.request_id) for a in actions if isinstance(a, Dispatch)] == [(True, rid)]


def test_a_preemption_that_freed_no_worker_is_followed_by_the_next_victim() -> None:
    core = Core(2)
    core.register(flow("low", nodes=[("a", "noop"), ("b", "noop"), ("c", "noop")], edges=[], priority=9), 0.0)
    core.register(flow("hi", nodes=[("a", "noop")], edges=[], priority=0), 0.0)
    core.trigger("low", 0.0, "manual", "m")
    core.schedule(0.0)
    core.trigger("hi", 1.0, "manual", "m")
    first = [a for a in core.schedule(1.0) if isinstance(a, Preempt)]
    urgent = core.cycles[("hi", 0)].tasks["a"]
    assert first[0].urgent_id == urgent.id and urgent.status == "running"
    again = core.preempt_again(urgent.id, 2.0)  # the broker said: that one was still queued there
    assert [type(a) for a in again] == [Preempt] and again[0].task is not first[0].task
    core.check()
