"""The TradingFlow document's curl examples, sent as written to the sidecar of a real ``tacore serve``.

Covered here: the sidecar's routes, bodies, key guard and error mapping, through the real broker, with the
engine's own validation (``parse_flow``) and node code (``run_node``). Stood in (``fake_scheduler.py``):
the scheduler process itself, which the flows branch does not serve yet; cycles there do not run, their
tasks take fixed states. Once the engine's scheduler serves ``flow.*``, these tests run against it by
dropping the ``flow_scheduler`` fixture for ``tacore serve``'s own.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from fake_scheduler import FakeScheduler
from sidecar_helpers import Service

JSON = {"Content-Type": "application/json"}

# -- the document's payloads, verbatim (000_c59f45cbef201c02.txt) ----------------------------------------
DOC_FLOW: dict[str, Any] = {
    "flow_id": "example_flow",
    "cycle_interval": "1m",
    "flow_json": {
        "nodes": [
            {"id": "binance_price", "type": "binance_price_node",
             "config": {"node_class_type": "binance_price_node", "symbol": "BTCUSDT", "interval": "1h", "limit": 10}},
            {"id": "ai_model_node", "type": "ai_model_node",
             "config": {"node_class_type": "ai_model_node", "operation": "rolling_avg", "window": 5}},
            {},
        ],
        "edges": [{"source": "binance_price", "target": "data_processor"}],
    },
}
DOC_PRICE_NODE: dict[str, Any] = {
    "flow_id": "example_flow", "component_id": 1, "cycle": 1, "node_id": "binance_price_node_1",
    "node_type": "binance_price_node", "input_edges": [],
    "output_edges": [{"source": "binance_price_node_1", "source_handle": "price_data_handle",
                      "target": "data_processor_2", "target_handle": "price_data_handle"}],
    "config": {"node_class_type": "binance_price_node", "symbol": "BTCUSDT", "interval": "1h", "limit": 10},
}
DOC_TRADE_NODE: dict[str, Any] = {
    "flow_id": "trading_flow", "component_id": 2, "cycle": 1, "node_id": "uniswap_trade_node1",
    "node_type": "dex_trade_node", "input_edges": [],
    "output_edges": [{"source": "uniswap_trade_node1", "source_handle": "output",
                      "target": "trade_notification_node", "target_handle": "transaction_receipt"}],
    "config": {"node_class_type": "dex_trade_node", "chain_id": 31337, "dex_name": "uniswap",
               "vault_address": "0xfDD930c22708c7572278cf74D64f3721Eedc18Ad", "action": "buy",
               "output_token_address": "0x88D3CAaD49fC2e8E38C812c5f4ACdd0a8B065F66", "amount_in": "1.5",
               "min_amount_out": "0", "slippage_tolerance": 0.5, "signal_timeout": 10},
}


def runnable_doc_flow(flow_id: str = "example_flow") -> dict[str, Any]:
    """The document's flow with its two slips mended: no empty node, the edge to the node that exists."""
    flow = copy.deepcopy(DOC_FLOW)
    flow["flow_id"] = flow_id
    flow["flow_json"]["nodes"].pop()
    flow["flow_json"]["edges"][0]["target"] = "ai_model_node"
    return flow


@pytest.fixture
def http(service: Service, flow_scheduler: FakeScheduler) -> Any:
    with service.client() as client:
        yield client


def test_document_flow_is_answered_422_with_a_pointer_at_each_problem(http: httpx.Client) -> None:
    reply = http.post("/flows/execute", json=DOC_FLOW, headers=JSON)
    assert reply.status_code == 422, reply.text
    problems = {(d["pointer"], d["type"]) for d in reply.json()["detail"]}
    assert ("/flow_json/nodes/2", "empty_node") in problems
    assert any(p.startswith("/flow_json/edges/0") and t == "unknown_node" for p, t in problems), problems
    empty = next(d for d in reply.json()["detail"] if d["type"] == "empty_node")
    assert empty["loc"] == ["body", "flow_json", "nodes", "2"]


def test_document_flow_curl_sequence_runs_and_reports(http: httpx.Client) -> None:
    run = http.post("/flows/execute", json=runnable_doc_flow(), headers=JSON)
    assert run.status_code == 200, run.text
    assert run.json()["flow_id"] == "example_flow" and run.json()["status"] == "active"
    assert run.json()["components"] == [{"component_id": 0, "nodes": ["binance_price", "ai_model_node"]}]

    status = http.get("/flows/example_flow/status", headers=JSON)
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["cycle_interval"] == "1m" and body["trigger"] == "schedule"
    assert [n["id"] for n in body["definition"]["nodes"]] == ["binance_price", "ai_model_node"]

    cycle0 = http.get("/flows/example_flow/cycles/0", headers=JSON)
    assert cycle0.status_code == 200, cycle0.text
    states = {t["node_id"]: t["status"] for t in cycle0.json()["tasks"]}
    assert states == {"binance_price": "completed", "ai_model_node": "running"}

    started = http.post("/flows/example_flow/cycles", headers=JSON)  # no body, as the document sends it
    assert started.status_code == 200, started.text
    assert started.json()["cycle"] == 1
    fifth = http.post("/flows/example_flow/cycles", headers=JSON, json={"cycle": 5})
    assert fifth.status_code == 200 and fifth.json()["cycle"] == 5, fifth.text
    again = http.post("/flows/example_flow/cycles", headers=JSON, json={"cycle": 5})
    assert again.status_code == 422, again.text

    component = http.post("/flows/example_flow/cycles/0/components/0/stop", headers=JSON)
    assert component.status_code == 200, component.text
    assert component.json() == {"flow_id": "example_flow", "cycle": 0, "component": 0, "cancelled_tasks": 1}
    assert http.get("/flows/example_flow/cycles/0").json()["status"] == "cancelled"

    stop = http.post("/flows/example_flow/stop", headers=JSON)
    assert stop.status_code == 200, stop.text
    assert stop.json()["status"] == "stopped" and stop.json()["cancelled_tasks"] == 2  # cycles 1 and 5

    listed = http.get("/flows").json()
    assert any(f["flow_id"] == "example_flow" and f["status"] == "stopped" for f in listed["flows"])
    cycles = http.get("/flows/example_flow/cycles", params={"limit": 2}).json()["cycles"]
    assert [c["cycle"] for c in cycles] == [5, 1]
    logs = http.get("/flows/example_flow/logs", params={"cycle": 0}).json()["logs"]
    assert any("cancelled" in row["message"] for row in logs)


def test_document_price_node_example_runs_the_node(http: httpx.Client) -> None:
    reply = http.post("/nodes/execute", json=DOC_PRICE_NODE, headers=JSON)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["node_id"] == "binance_price_node_1" and body["status"] == "completed"
    assert len(body["outputs"]["price_data_handle"]["candles"]) == 10


def test_document_dex_trade_node_example_is_refused_naming_what_is_wrong(http: httpx.Client) -> None:
    # a DEX swap (chain, vault, token addresses) is not a venue TACore trades on: the type or its config is refused
    reply = http.post("/nodes/execute", json=DOC_TRADE_NODE, headers=JSON)
    assert reply.status_code == 422, reply.text
    locations = [tuple(d["loc"]) for d in reply.json()["detail"]]
    assert locations and all(loc == ("body", "node_type") or loc[:2] == ("body", "config")
                             for loc in locations), locations


def test_node_status_and_stop(http: httpx.Client) -> None:
    assert http.post("/flows/execute", json=runnable_doc_flow("node_flow")).status_code == 200
    status = http.get("/nodes/ai_model_node/status", params={"flow_id": "node_flow"})
    assert status.status_code == 200, status.text
    assert [t["status"] for t in status.json()["tasks"]] == ["running"]
    stop = http.post("/nodes/ai_model_node/stop", json={"flow_id": "node_flow"})
    assert stop.status_code == 200 and stop.json() == {"node_id": "ai_model_node", "cancelled_tasks": 1}, stop.text
    assert http.get("/nodes/no_such_node/status").status_code == 404


def test_stats_show_slots_and_resource_use(http: httpx.Client) -> None:
    reply = http.get("/stats")
    assert reply.status_code == 200, reply.text
    assert {"slots", "slots_used", "queued", "running"} <= set(reply.json())
    assert "cpu_percent" in reply.json()["resources"]["system"]


def test_unknown_flow_and_cycle_are_404(http: httpx.Client) -> None:
    assert http.get("/flows/no_such_flow/status").status_code == 404
    assert http.post("/flows/no_such_flow/stop").status_code == 404
    assert http.post("/flows/execute", json=runnable_doc_flow("flow404")).status_code == 200
    missing = http.get("/flows/flow404/cycles/99")
    assert missing.status_code == 404 and missing.json()["component"] == "flow_scheduler"


def test_flow_routes_need_the_key_and_commands_the_header(service: Service, flow_scheduler: FakeScheduler) -> None:
    with service.client(key=None) as anonymous:
        assert anonymous.get("/flows").status_code == 401
        assert anonymous.post("/flows/execute", json=runnable_doc_flow()).status_code == 401
    with service.client(key="wrong") as wrong:
        assert wrong.get("/stats").status_code == 401
    with service.client(key=None, cookies={"tacore_api_key": str(service.api_key)}) as dashboard:
        assert dashboard.get("/flows").status_code == 200  # reads: the dashboard's cookie will do
        assert dashboard.post("/flows/example_flow/stop").status_code == 401  # commands: the header only


def test_bad_bodies_are_400_or_422_never_5xx(http: httpx.Client) -> None:
    assert http.post("/flows/execute", content=b"\xff\xfe", headers=JSON).status_code in (400, 422)
    assert http.post("/flows/execute", content=b"{nope", headers=JSON).status_code == 422
    assert http.post("/flows/execute", json={"flow_id": "x", "priority": 12}).status_code == 422
    assert http.post("/flows/x/cycles", json={"cycle": -1}).status_code == 422
    assert http.get("/flows/bad id!/status").status_code == 422
    lone = b'{"flow_id": "x", "flow_json": {"nodes": [{"id": "\\ud800"}]}}'  # a lone surrogate: no UTF-8 for it
    assert http.post("/flows/execute", content=lone, headers=JSON).status_code == 422
    many_edges = [{"source": f"n{i}", "target": f"m{i}", "source_handle": "x" * 100} for i in range(9000)]
    too_big = http.post("/nodes/execute", json={**DOC_PRICE_NODE, "output_edges": many_edges})
    assert too_big.status_code == 413 and "MAX_REQUEST_BYTES" in too_big.json()["detail"], too_big.text


def test_a_path_served_by_get_and_post_allows_both(http: httpx.Client) -> None:
    reply = http.request("OPTIONS", "/flows/example_flow/cycles")
    assert reply.status_code == 405 and reply.headers["allow"] == "GET, POST"
