"""Flows through a real ``tacore serve``: the scheduler process, the broker and pool workers running nodes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from clients import LazyPirateClient, RemoteError
from tests.integration.flows.flow_helpers import chain, flow_client, tasks_by_node, wait_cycle
from tests.support.processes import TACoreProcess


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TACoreProcess]:
    proc = TACoreProcess(tmp_path_factory.mktemp("flows"), ["serve", "--no-data-agent", "--no-api"]).start()
    try:
        proc.wait_healthy(timeout=90, workers=2)
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(service: TACoreProcess) -> Iterator[LazyPirateClient]:
    c = flow_client(service)
    yield c
    c.close()


DEMO = {
    "id": "high_freq_trading", "name": "高频交易工作流", "priority": 0, "trigger": "event",
    "trigger_event": "DATA_READY", "trigger_filter": {"symbols": ["NOSUCH"]}, "max_concurrent": 3,
    "tasks": [
        {"id": "collect_data", "action": "collect_real_time_data", "timeout": 1000, "retry": 2},
        {"id": "calculate_signal", "depends_on": ["collect_data"], "action": "calculate_trading_signal",
         "timeout": 1000},
        {"id": "execute_order", "depends_on": ["calculate_signal"], "action": "execute_order", "timeout": 2000},
    ]}


def test_the_workflow_demos_template_runs_its_tasks_in_order(client: LazyPirateClient) -> None:
    run = client.flow_run(DEMO)
    assert run["components"] == [{"component_id": 0, "nodes": ["collect_data", "calculate_signal", "execute_order"]}]
    started = client.flow_cycle("high_freq_trading")
    cycle = wait_cycle(client, "high_freq_trading", started["cycle"])
    assert cycle["status"] == "completed"
    tasks = tasks_by_node(cycle)
    assert tasks["execute_order"]["input_data"] == {"input": {"signal": "BUY", "price": 100.0}}
    assert tasks["collect_data"]["finished_at"] <= tasks["calculate_signal"]["started_at"]
    assert {t["priority"] for t in tasks.values()} == {0}
    assert all(t["worker"] and t["request_id"] for t in tasks.values())


def test_a_failing_node_is_retried_with_backoff_and_logs_each_attempt(client: LazyPirateClient) -> None:
    client.flow_run(chain("retrying", {"action": "fail", "fail_attempts": 2}, {"action": "echo"}, retries=2))
    cycle = wait_cycle(client, "retrying", client.flow_cycle("retrying")["cycle"])
    first = tasks_by_node(cycle)["n0"]
    assert (cycle["status"], first["attempt"]) == ("completed", 3)
    logs = client.flow_logs("retrying", node_id="n0")["logs"]
    assert [entry["level"] for entry in logs] == ["WARNING", "WARNING"] and "retrying in" in logs[0]["message"]


def test_a_failed_node_skips_downstream_and_a_retry_reruns_only_those(client: LazyPirateClient) -> None:
    client.flow_run(chain("failing", {"action": "echo"}, {"action": "fail", "fail_attempts": 1},
                          {"action": "echo"}))
    number = client.flow_cycle("failing")["cycle"]
    cycle = wait_cycle(client, "failing", number)
    tasks = tasks_by_node(cycle)
    assert cycle["status"] == "failed" and "fail action" in (cycle["error"] or "")
    assert [tasks[n]["status"] for n in ("n0", "n1", "n2")] == ["completed", "failed", "skipped"]
    client.flow_cycle_retry("failing", number)
    again = tasks_by_node(wait_cycle(client, "failing", number))
    assert [again[n]["status"] for n in ("n0", "n1", "n2")] == ["completed"] * 3
    assert again["n0"]["finished_at"] == tasks["n0"]["finished_at"]  # not re-run


def test_stopping_one_component_leaves_the_other_running(client: LazyPirateClient) -> None:
    flow = {"flow_id": "two_parts", "flow_json": {"nodes": [
        {"id": "fast", "type": "action_node", "config": {"action": "sleep", "duration_ms": 300}},
        {"id": "slow", "type": "action_node", "config": {"action": "sleep", "duration_ms": 60_000}}], "edges": []}}
    assert [c["nodes"] for c in client.flow_run(flow)["components"]] == [["fast"], ["slow"]]
    number = client.flow_cycle("two_parts")["cycle"]
    time.sleep(0.5)
    stopped = client.flow_stop("two_parts", cycle=number, component=1)
    assert stopped["cancelled_tasks"] == 1
    cycle = wait_cycle(client, "two_parts", number)
    assert cycle["components"] == {"0": "completed", "1": "cancelled"}
    assert client.node_status("slow", flow_id="two_parts")["tasks"][0]["status"] == "cancelled"


def test_a_one_second_flow_starts_on_the_second_and_stops(client: LazyPirateClient) -> None:
    client.flow_run(chain("every_second", {"action": "noop"}, cycle_interval="1s"))
    time.sleep(3.5)
    client.flow_stop("every_second")
    cycles = [c for c in client.flow_cycles("every_second")["cycles"] if c["status"] != "missed"]
    assert len(cycles) >= 2
    for cycle in cycles:
        assert cycle["scheduled_at"] == int(cycle["scheduled_at"])  # aligned to the wall clock
        assert 0 <= cycle["lateness_ms"] < 500
    status = client.flow_status("every_second")
    assert status["status"] == "stopped" and status["next_run_at"] is None


def test_an_invalid_flow_is_refused_with_every_problem(client: LazyPirateClient) -> None:
    with pytest.raises(RemoteError) as info:
        client.flow_run({"flow_id": "example_flow", "cycle_interval": "1m", "flow_json": {"nodes": [
            {"id": "binance_price", "type": "binance_price_node",
             "config": {"node_class_type": "binance_price_node", "symbol": "BTCUSDT", "interval": "1h", "limit": 10}},
            {}], "edges": [{"source": "binance_price", "target": "data_processor"}]}})
    assert info.value.code == "INVALID_PARAMS"
    assert [d["pointer"] for d in info.value.details] == ["/flow_json/nodes/1", "/flow_json/edges/0/target"]


def test_a_manual_cycle_retried_with_its_request_id_starts_once(client: LazyPirateClient) -> None:
    client.flow_run(chain("manual_once", {"action": "noop"}))
    first = client.flow_cycle("manual_once", request_id="same-request")
    second = client.flow_cycle("manual_once", request_id="same-request")
    assert first["cycle"] == second["cycle"]
    assert len(client.flow_cycles("manual_once")["cycles"]) == 1


def test_node_execute_runs_one_node_outside_any_flow(client: LazyPirateClient) -> None:
    out = client.node_execute({"flow_id": "example_flow", "component_id": 1, "cycle": 1, "node_id": "avg",
                               "node_type": "data_processor", "input_edges": [], "output_edges": [],
                               "config": {"operation": "rolling_avg", "window": 2},
                               "inputs": {"input": [1, 2, 3]}})
    assert out["status"] == "completed" and out["outputs"]["output"]["values"] == [1.5, 2.5]


def test_unknown_flows_are_not_found(client: LazyPirateClient) -> None:
    with pytest.raises(RemoteError) as info:
        client.flow_status("nope")
    assert info.value.details[0]["type"] == "not_found"


