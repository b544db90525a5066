"""The TradingFlow document's examples through ``tacore serve --demo`` (exchange simulator, data agent, pool,
flow scheduler): its price node reads stored candles, its ai_model_node takes their rolling average, and a
DATA_READY trigger starts one cycle per closed candle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clients import LazyPirateClient
from tests.integration.flows.flow_helpers import flow_client, tasks_by_node, wait_cycle
from tests.support.processes import TACoreProcess, wait_until

#: the document's /nodes/execute example for its price node, as its curl sends it
PRICE_NODE = {
    "flow_id": "example_flow", "component_id": 1, "cycle": 1, "node_id": "binance_price_node_1",
    "node_type": "binance_price_node", "input_edges": [],
    "output_edges": [{"source": "binance_price_node_1", "source_handle": "price_data_handle",
                      "target": "data_processor_2", "target_handle": "price_data_handle"}],
    "config": {"node_class_type": "binance_price_node", "symbol": "BTCUSDT", "interval": "1h", "limit": 10}}

#: the document's /flows/execute example, its empty node and dangling edge put right
DOCUMENT_FLOW: dict[str, Any] = {
    "flow_id": "example_flow", "cycle_interval": "1m",
    "flow_json": {"nodes": [
        {"id": "binance_price", "type": "binance_price_node",
         "config": {"node_class_type": "binance_price_node", "symbol": "BTCUSDT", "interval": "1h", "limit": 10}},
        {"id": "ai_model_node", "type": "ai_model_node",
         "config": {"node_class_type": "ai_model_node", "operation": "rolling_avg", "window": 5}},
    ], "edges": [{"source": "binance_price", "target": "ai_model_node", "source_handle": "price_data_handle",
                  "target_handle": "price_data_handle"}]}}


@pytest.mark.timeout(240)
def test_the_documents_flow_runs_on_stored_candles(tacore_factory: Callable[..., TACoreProcess]) -> None:
    tacore = tacore_factory(["serve", "--demo", "--no-api"], WORKER_COUNT="2")
    tacore.wait_healthy(timeout=120, workers=2)
    client: LazyPirateClient = flow_client(tacore)
    try:
        wait_until(lambda: client.call("kline.history", {"symbol": "BTCUSDT", "interval": "1h", "limit": 10})[
            "count"] == 10, 90, "10 stored 1h BTCUSDT candles")
        node = client.node_execute(PRICE_NODE)
        price = node["outputs"]["price_data_handle"]
        assert price["count"] == 10 and price["last_price"] == price["close"][-1] > 0

        run = client.flow_run(DOCUMENT_FLOW)
        # on the same minute's close as the cycle: both wait for one boundary, not one each
        client.flow_run({"flow_id": "on_close", "trigger": "event", "trigger_event": "DATA_READY",
                         "trigger_filter": {"symbols": ["BTCUSDT"], "intervals": ["1m"]},
                         "tasks": [{"id": "seen", "action": "echo"}]})
        assert run["next_run_at"] % 60 == 0
        cycle = wait_cycle(client, "example_flow", client.flow_cycle("example_flow")["cycle"], timeout=60)
        assert cycle["status"] == "completed", cycle
        tasks = tasks_by_node(cycle)
        closes = tasks["binance_price"]["output_data"]["price_data_handle"]["close"]
        averaged = tasks["ai_model_node"]["output_data"]["output"]
        assert averaged["values"][-1] == pytest.approx(sum(closes[-5:]) / 5)

        first = wait_until(lambda: client.flow_cycles("on_close")["cycles"], 90, "a cycle on a 1m candle close")
        event = tasks_by_node(wait_cycle(client, "on_close", first[-1]["cycle"]))["seen"]["input_data"]["event"]
        assert (event["event"], event["symbol"], event["interval"]) == ("DATA_READY", "BTCUSDT", "1m")
        client.flow_stop("on_close")
        client.flow_stop("example_flow")
    finally:
        client.close()
