"""Retrying a stored cycle after the flow's definition lost some of its nodes is a clear refusal naming them,
not an internal error (schemathesis found the KeyError)."""

from __future__ import annotations

import itertools
import random

import pytest

from tacore.flows.core import Core, CoreError
from tacore.flows.model import FlowSpec, parse_flow
from tacore.flows.nodes import node_type


def _spec(nodes: list[str]) -> FlowSpec:
    return parse_flow({"flow_id": "f", "flow_json": {
        "nodes": [{"id": n, "type": "action_node", "config": {"action": "noop"}} for n in nodes],
        "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(nodes)]}}, node_type)


def test_a_cycle_whose_nodes_left_the_definition_is_refused_by_name() -> None:
    core = Core(2, aging_s=3.0, rng=random.Random(1))
    core.register(_spec(["a", "b", "hold"]), 1000.0)
    cycle, _ = core.trigger("f", 1000.0, "manual", "manual:1", None, None)
    assert cycle is not None
    core.stop_cycle("f", cycle.cycle, None, 1000.5)
    assert cycle.terminal and ("f", cycle.cycle) not in core.cycles
    core.register(_spec(["a", "b"]), 1001.0)
    cycle.graph = None  # as the store loads it
    with pytest.raises(CoreError, match="hold"):
        core.retry_cycle("f", cycle.cycle, 1002.0, cycle)


def test_a_cycle_whose_definition_gained_nodes_is_refused_by_name() -> None:
    core = Core(2, aging_s=3.0, rng=random.Random(1))
    core.register(_spec(["a", "b"]), 1000.0)
    cycle, _ = core.trigger("f", 1000.0, "manual", "manual:1", None, None)
    assert cycle is not None
    core.stop_cycle("f", cycle.cycle, None, 1000.5)
    core.register(_spec(["a", "b", "later"]), 1001.0)  # b -> later: a retry of b would feed a node it never had
    cycle.graph = None
    with pytest.raises(CoreError, match="nodes added since: later"):
        core.retry_cycle("f", cycle.cycle, 1002.0, cycle)


def test_a_restored_cycle_whose_nodes_left_the_definition_ends_cancelled_naming_them() -> None:
    core = Core(2, aging_s=3.0, rng=random.Random(1))
    core.register(_spec(["a", "b"]), 1000.0)
    cycle, _ = core.trigger("f", 1000.0, "manual", "manual:1", None, None)
    assert cycle is not None
    [dispatch] = core.schedule(1000.0)
    core.on_reply(dispatch.task.request_id or "", {"status": "success", "data": {"outputs": {"output": 1}}}, 1000.1)
    [running_b] = core.schedule(1000.1)  # b runs when the scheduler dies

    after = Core(2, aging_s=3.0, rng=random.Random(2))  # the restarted scheduler, on the replaced definition
    after.register(_spec(["a"]), 1001.0)
    cycle.graph = None  # as the store loads it
    assert after.restore_cycle(cycle, 1001.0) == []  # b is not asked again on a definition without it
    assert cycle.status == "cancelled" and "b" in (cycle.error or "") and ("f", cycle.cycle) not in after.cycles
    assert cycle.tasks["a"].status == "completed" and running_b.task.status == "cancelled"
    assert after.used == 0 and not after.flows["f"].open
    after.check()
