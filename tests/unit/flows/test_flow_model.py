"""The flow model: both spellings parse into one model; every problem is reported at once with a pointer."""

from __future__ import annotations

from typing import Any

import pytest

from tacore.flows.model import FlowInvalid, interval_seconds, parse_flow
from tacore.flows.nodes import node_type

#: the TradingFlow document's /flows/execute example, exactly as its curl sends it
DOCUMENT_FLOW: dict[str, Any] = {
    "flow_id": "example_flow", "cycle_interval": "1m",
    "flow_json": {"nodes": [
        {"id": "binance_price", "type": "binance_price_node",
         "config": {"node_class_type": "binance_price_node", "symbol": "BTCUSDT", "interval": "1h", "limit": 10}},
        {"id": "ai_model_node", "type": "ai_model_node",
         "config": {"node_class_type": "ai_model_node", "operation": "rolling_avg", "window": 5}},
        {},
    ], "edges": [{"source": "binance_price", "target": "data_processor"}]}}

#: the workflow demo's high_freq_trading template
DEMO_TEMPLATE: dict[str, Any] = {
    "id": "high_freq_trading", "name": "高频交易工作流", "priority": 0, "trigger": "event",
    "trigger_event": "DATA_READY", "max_concurrent": 3,
    "tasks": [
        {"id": "collect_data", "name": "采集高频数据", "action": "collect_real_time_data", "timeout": 100, "retry": 2},
        {"id": "calculate_signal", "name": "计算交易信号", "depends_on": ["collect_data"],
         "action": "calculate_trading_signal", "timeout": 50},
        {"id": "execute_order", "name": "执行订单", "depends_on": ["calculate_signal"], "action": "execute_order",
         "timeout": 200},
    ]}


def problems(raw: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(FlowInvalid) as info:
        parse_flow(raw, node_type)
    details: list[dict[str, str]] = info.value.details
    return details


def test_document_example_reports_its_empty_node_and_unknown_edge_target_together() -> None:
    found = problems(DOCUMENT_FLOW)
    assert [(p["pointer"], p["type"]) for p in found] == [
        ("/flow_json/nodes/2", "empty_node"), ("/flow_json/edges/0/target", "unknown_node")]


def test_document_example_once_fixed_parses_into_one_component() -> None:
    raw = {**DOCUMENT_FLOW, "flow_json": {"nodes": DOCUMENT_FLOW["flow_json"]["nodes"][:2], "edges": [
        {"source": "binance_price", "target": "ai_model_node", "sourceHandle": "price_data_handle",
         "targetHandle": "price_data_handle"}]}}
    spec = parse_flow(raw, node_type)
    assert spec.flow_id == "example_flow" and spec.trigger == "schedule"
    assert spec.components == (("binance_price", "ai_model_node"),)
    assert spec.edges[0].source_handle == "price_data_handle" and spec.edges[0].target_handle == "price_data_handle"
    assert spec.node("binance_price").config == {"symbol": "BTCUSDT", "interval": "1h", "limit": 10}


def test_demo_template_becomes_a_chain_of_action_nodes_with_timeouts_and_retries() -> None:
    spec = parse_flow(DEMO_TEMPLATE, node_type)
    assert spec.trigger == "event" and spec.options.priority == 0 and spec.options.max_concurrent == 3
    assert [(e.source, e.target) for e in spec.edges] == [("collect_data", "calculate_signal"),
                                                          ("calculate_signal", "execute_order")]
    first = spec.node("collect_data")
    assert (first.type, first.timeout_ms, first.retries) == ("action_node", 100, 2)


def test_every_problem_is_reported_with_its_pointer() -> None:
    raw = {"flow_id": "bad flow!", "cycle_interval": "2d", "flow_json": {"nodes": [
        {"id": "a", "type": "no_such_type", "config": {}},
        {"id": "p", "type": "binance_price_node", "config": {"symbol": "BTCUSDT", "limit": 5000, "colour": "red"}},
        {"id": "p", "type": "data_processor", "config": {}},
        {"id": "x", "type": "data_processor", "config": {}},
    ], "edges": [{"source": "x", "target": "p", "source_handle": "nope"}]}}
    found = {(p["pointer"], p["type"]) for p in problems(raw)}
    assert found == {
        ("/flow_id", "invalid_field"), ("/cycle_interval", "invalid_field"),
        ("/flow_json/nodes/0/type", "unknown_type"),
        ("/flow_json/nodes/1/config/limit", "invalid_config"), ("/flow_json/nodes/1/config/colour", "invalid_config"),
        ("/flow_json/nodes/2/id", "duplicate_id"),
        ("/flow_json/edges/0/source_handle", "unknown_handle"),
        ("/flow_json/edges/0/target_handle", "unknown_handle"),  # a price node takes no input
    }


def test_a_cycle_is_named() -> None:
    nodes: list[dict[str, Any]] = [{"id": n, "type": "data_processor", "config": {}} for n in "abc"]
    edges = [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}, {"source": "c", "target": "a"}]
    found = problems({"flow_id": "f", "flow_json": {"nodes": nodes, "edges": edges}})
    assert found[0]["type"] == "cycle" and "a -> b -> c -> a" in found[0]["message"]


def test_components_are_numbered_by_their_first_node() -> None:
    nodes: list[dict[str, Any]] = [{"id": n, "type": "data_processor", "config": {}} for n in ("a", "z", "b", "y")]
    edges = [{"source": "a", "target": "b"}, {"source": "z", "target": "y"}]
    spec = parse_flow({"flow_id": "f", "flow_json": {"nodes": nodes, "edges": edges}}, node_type)
    assert spec.components == (("a", "b"), ("z", "y"))
    assert spec.component_of() == {"a": 0, "b": 0, "z": 1, "y": 1}


def test_depends_on_an_unknown_task_points_at_the_dependency() -> None:
    raw = {"id": "w", "tasks": [{"id": "t", "action": "echo", "depends_on": ["ghost"]}]}
    assert problems(raw) == [{"pointer": "/tasks/0/depends_on/0", "type": "unknown_node",
                              "message": "edge source 'ghost' is not a node of this flow"}]


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1), ("30s", 30), ("1m", 60), ("4h", 14400), ("1d", 86400)])
def test_intervals_from_one_second_to_one_day(text: str, seconds: int) -> None:
    assert interval_seconds(text) == seconds


@pytest.mark.parametrize("text", ["0s", "2d", "25h", "1w", "m", ""])
def test_intervals_outside_one_second_to_one_day_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        interval_seconds(text)


def test_cron_is_checked() -> None:
    assert problems({"flow_id": "f", "cron": "not a cron", "tasks": [{"id": "t", "action": "noop"}]})[0][
        "pointer"] == "/cron"
    spec = parse_flow({"flow_id": "f", "cron": "*/5 * * * *", "tasks": [{"id": "t", "action": "noop"}]}, node_type)
    assert spec.trigger == "schedule"
