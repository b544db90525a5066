"""A hypothesis state machine over the scheduler's core: whatever happens (ticks, manual cycles, replies
that succeed, fail or are lost, stops, preemption, retries), at most one cycle exists per scheduled time,
slots are never over-committed, and once the flows are stopped and the replies are in, every node of every
cycle has ended in a terminal state."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tacore.flows.core import TERMINAL_TASK, Core, Cycle, Dispatch
from tacore.flows.model import FlowSpec, parse_flow
from tacore.flows.nodes import node_type

SPECS: list[FlowSpec] = [
    parse_flow({"flow_id": f"f{i}", "priority": priority, "max_concurrent": limit, "overlap": overlap,
                "cycle_interval": interval, "retries": retries, "timeout_ms": 2000, "flow_json": {
                    "nodes": [{"id": n, "type": "condition_node" if n == "c" else "action_node",
                               "config": {"op": "gt", "left": "input", "right": 0} if n == "c" else {"action": "noop"}}
                              for n in ("a", "b", "c", "d", "e")],
                    "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"},
                              {"source": "c", "target": "d", "source_handle": "true"},
                              {"source": "b", "target": "d"}]}}, node_type)
    for i, (priority, limit, overlap, interval, retries) in enumerate([
        (0, 0, "skip", "1s", 1), (9, 2, "buffer_one", "2s", 0), (5, 1, "cancel_other", "1s", 2),
        (9, 0, "skip", None, 1)])
]


class SchedulerMachine(RuleBasedStateMachine):
    @initialize(slots=st.integers(1, 4), seed=st.integers(0, 2**16))
    def start(self, slots: int, seed: int) -> None:
        self.core = Core(slots, aging_s=3.0, rng=random.Random(seed))
        self.now = 1000.0
        self.cycles: dict[tuple[str, int], Cycle] = {}
        self.keys: dict[tuple[str, str], int] = {}
        for spec in SPECS:
            self.core.register(spec, self.now)

    def _apply(self, actions: list[Any]) -> None:
        for cycle in list(self.core.dirty_cycles.values()):
            number = self.keys.setdefault((cycle.flow_id, cycle.trigger_key), cycle.cycle)
            assert number == cycle.cycle, f"two cycles for {cycle.flow_id} {cycle.trigger_key}"
            self.cycles[(cycle.flow_id, cycle.cycle)] = cycle
        self.core.dirty_cycles.clear()
        self.core.dirty_tasks.clear()
        self.core.logs.clear()
        for action in actions:
            if isinstance(action, Dispatch):  # every request names its task's current request_id
                assert action.task.request_id is not None and action.task.cycle >= 0

    @rule(dt=st.floats(0.0, 3.0))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        actions = self.core.expire(self.now) + self.core.due(self.now) + self.core.schedule(self.now)
        self._apply(actions)

    @rule(flow=st.sampled_from([s.flow_id for s in SPECS]), number=st.none() | st.integers(0, 30))
    def manual_cycle(self, flow: str, number: int | None) -> None:
        if self.core.flows[flow].status != "active":
            return
        try:
            _, actions = self.core.trigger(flow, self.now, "manual", f"manual:{self.now}:{number}", None, number)
        except Exception as exc:  # a number in use
            assert "exists already" in str(exc)
            return
        self._apply(actions + self.core.schedule(self.now))

    @precondition(lambda self: bool(self.core.by_request))
    @rule(data=st.data(), outcome=st.sampled_from(["ok", "ok", "true", "false", "INTERNAL", "INVALID_PARAMS",
                                                  "TIMEOUT", "CANCELLED"]))
    def reply(self, data: st.DataObject, outcome: str) -> None:
        request_id = data.draw(st.sampled_from(sorted(self.core.by_request)))
        self._apply(self.core.on_reply(request_id, _reply(outcome), self.now) + self.core.schedule(self.now))

    @precondition(lambda self: bool(self.core.by_request))
    @rule(data=st.data())
    def preemption_found_its_victim_queued(self, data: st.DataObject) -> None:
        running = sorted(self.core.by_request.values(), key=lambda t: (t.flow_id, t.cycle, t.node_id))
        urgent = data.draw(st.sampled_from(running)).id  # ordered by name: task ids are random
        self._apply(self.core.preempt_again(urgent, self.now) + self.core.schedule(self.now))

    @rule(data=st.data())
    def late_or_unknown_reply(self, data: st.DataObject) -> None:
        self._apply(self.core.on_reply(data.draw(st.sampled_from(["tf:x:0:1.0", "nope"])), _reply("ok"), self.now))

    @rule(flow=st.sampled_from([s.flow_id for s in SPECS]))
    def stop_flow(self, flow: str) -> None:
        self._apply(self.core.stop_flow(flow, self.now))

    @rule(flow=st.sampled_from([s.flow_id for s in SPECS]))
    def resume_flow(self, flow: str) -> None:
        self.core.resume_flow(flow, self.now)

    @precondition(lambda self: bool(self.core.cycles))
    @rule(data=st.data(), component=st.none() | st.just(0))
    def stop_cycle(self, data: st.DataObject, component: int | None) -> None:
        flow, number = data.draw(st.sampled_from(sorted(self.core.cycles)))
        self._apply(self.core.stop_cycle(flow, number, component, self.now))

    @precondition(lambda self: any(c.status in ("failed", "cancelled") and (c.flow_id, c.cycle) not in
                                   self.core.cycles for c in self.cycles.values()))
    @rule(data=st.data())
    def retry_cycle(self, data: st.DataObject) -> None:
        done = sorted(k for k, c in self.cycles.items() if c.status in ("failed", "cancelled")
                      and k not in self.core.cycles)
        flow, number = data.draw(st.sampled_from(done))
        self.core.retry_cycle(flow, number, self.now, self.cycles[(flow, number)])
        self._apply(self.core.schedule(self.now))

    @invariant()
    def slots_are_never_over_committed(self) -> None:
        if hasattr(self, "core"):
            self.core.check()
            for flow in self.core.flows.values():
                limit = flow.spec.options.max_concurrent
                assert not limit or flow.running <= limit

    @invariant()
    def finished_cycles_have_only_terminal_tasks(self) -> None:
        for cycle in getattr(self, "cycles", {}).values():
            if cycle.terminal and cycle.status != "missed":
                assert all(t.status in TERMINAL_TASK for t in cycle.tasks.values()), cycle

    def teardown(self) -> None:
        if not hasattr(self, "core"):
            return
        for flow in list(self.core.flows):  # stop the schedules, then answer everything still running
            self.core.flows[flow].next_run_at = None
        for _ in range(500):
            if not self.core.cycles:
                break
            self.now += 40.0  # past every backoff and lease
            self._apply(self.core.expire(self.now) + self.core.schedule(self.now))
            actions: list[Any] = []
            for request_id in list(self.core.by_request):
                actions += self.core.on_reply(request_id, _reply("ok"), self.now)
            self._apply(actions + self.core.schedule(self.now))
        assert not self.core.cycles, [(key, [(t.node_id, t.status) for t in cycle.tasks.values()])
                                      for key, cycle in self.core.cycles.items()]
        for cycle in self.cycles.values():
            assert cycle.terminal and all(t.terminal for t in cycle.tasks.values()), cycle
        self.core.check()
        assert self.core.used == 0


def _reply(outcome: str) -> dict[str, Any]:
    if outcome in ("ok", "true", "false"):
        outputs = {"output": 1} if outcome == "ok" else {outcome: {"result": outcome == "true"}}
        return {"status": "success", "data": {"outputs": outputs, "logs": [{"level": "INFO", "message": "x"}]}}
    return {"status": "error", "error": {"code": outcome, "message": outcome}}


TestSchedulerMachine = SchedulerMachine.TestCase
TestSchedulerMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
