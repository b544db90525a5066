"""The TradingFlow document's curl examples, sent as written to the sidecar of a real ``tacore serve --demo``.

Everything is the real thing: the sidecar, the broker, the flow scheduler (``flow.*``), the pool workers
(``node.execute``) and the data agent whose stored candles (from the exchange simulator) the price node reads.
The document's flow has two slips (an empty node ``{}``, an edge to ``data_processor``, which it does not
define): sent verbatim it is answered 422 with a pointer at each; mended, it runs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from .sidecar_helpers import Service

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
    flow["flow_json"]["edges"][0].update(target="ai_model_node", source_handle="price_data_handle")
    return flow


def hold_flow(flow_id: str, *, seconds: float = 120.0) -> dict[str, Any]:
    """Manual flow: ``first`` (done at once) -> ``hold`` (sleeps, cancellable) -> ``last``; ``aside`` alone."""
    def action(name: str, **config: Any) -> dict[str, Any]:
        return {"id": name, "type": "action_node", "config": {"action": "noop", **config}}

    return {"flow_id": flow_id, "flow_json": {
        "nodes": [action("first"), action("hold", action="sleep", duration_ms=seconds * 1000), action("last"),
                  action("aside")],
        "edges": [{"source": "first", "target": "hold"}, {"source": "hold", "target": "last"}]}}


def defuse(http: httpx.Client, flow_id: str) -> None:
    """Make every node of a flow a quick no-op, keeping its node ids and edges: a later test (schemathesis lists
    the flows and starts cycles of them) must not hold pool workers in a sleeper. (Keeping the ids matters:
    the engine fails with a KeyError on a retry or stop of a cycle whose nodes the new definition lacks.)"""
    definition = http.get(f"/flows/{flow_id}/status").json()["definition"]
    quick = {"flow_id": flow_id, "start": False, "flow_json": {
        "nodes": [{"id": n["id"], "type": "action_node", "config": {"action": "noop"}} for n in definition["nodes"]],
        "edges": [{"source": e["source"], "target": e["target"]} for e in definition["edges"]]}}
    reply = http.post("/flows/execute", json=quick)
    assert reply.status_code == 200, reply.text


@pytest.fixture
def sleepers(http: httpx.Client) -> Iterator[list[str]]:
    """Flow ids a test registers with sleeping nodes; defused after it, pass or fail."""
    flows: list[str] = []
    yield flows
    for flow_id in flows:
        defuse(http, flow_id)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def cycle_when(http: httpx.Client, flow_id: str, cycle: int, done: Callable[[dict[str, Any]], bool],
               timeout: float = 60.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        reply = http.get(f"/flows/{flow_id}/cycles/{cycle}")
        return reply.json() if reply.status_code == 200 and done(reply.json()) else None

    result: dict[str, Any] = wait_for(check, timeout, f"cycle {cycle} of {flow_id}")
    return result


def states(cycle: dict[str, Any]) -> dict[str, str]:
    return {t["node_id"]: t["status"] for t in cycle["tasks"]}


@pytest.fixture
def http(flow_service: Service) -> Iterator[httpx.Client]:
    with flow_service.client() as client:
        yield client


def test_document_flow_is_answered_422_with_a_pointer_at_each_problem(http: httpx.Client) -> None:
    reply = http.post("/flows/execute", json=DOC_FLOW, headers=JSON)
    assert reply.status_code == 422, reply.text
    problems = {(d["pointer"], d["type"]) for d in reply.json()["detail"]}
    assert ("/flow_json/nodes/2", "empty_node") in problems
    assert any(p.startswith("/flow_json/edges/0") and t == "unknown_node" for p, t in problems), problems
    empty = next(d for d in reply.json()["detail"] if d["type"] == "empty_node")
    assert empty["loc"] == ["body", "flow_json", "nodes", "2"]


def test_document_flow_curl_sequence_runs_on_stored_candles(http: httpx.Client) -> None:
    run = http.post("/flows/execute", json=runnable_doc_flow(), headers=JSON)
    assert run.status_code == 200, run.text
    assert run.json()["flow_id"] == "example_flow" and run.json()["status"] == "active"
    assert run.json()["components"] == [{"component_id": 0, "nodes": ["binance_price", "ai_model_node"]}]
    assert run.json()["next_run_at"] % 60 == 0  # a 1m flow starts on the minute

    status = http.get("/flows/example_flow/status", headers=JSON)
    assert status.status_code == 200, status.text
    assert status.json()["cycle_interval"] == "1m" and status.json()["trigger"] == "schedule"
    assert [n["id"] for n in status.json()["definition"]["nodes"]] == ["binance_price", "ai_model_node"]

    started = http.post("/flows/example_flow/cycles", headers=JSON)  # no body, as the document sends it
    assert started.status_code == 200, started.text
    number = started.json()["cycle"]
    done = cycle_when(http, "example_flow", number, lambda c: c["status"] in ("completed", "failed"))
    assert done["status"] == "completed", done
    tasks = {t["node_id"]: t for t in done["tasks"]}
    closes = tasks["binance_price"]["output_data"]["price_data_handle"]["close"]
    assert len(closes) == 10
    assert tasks["ai_model_node"]["output_data"]["output"]["values"][-1] == pytest.approx(sum(closes[-5:]) / 5)

    cycle0 = http.get("/flows/example_flow/cycles/0", headers=JSON)  # the document's curl, verbatim
    assert cycle0.status_code == 200, cycle0.text
    assert cycle0.json()["cycle"] == 0 and {t["node_id"] for t in cycle0.json()["tasks"]} == set(tasks)

    fifth = http.post("/flows/example_flow/cycles", headers=JSON, json={"cycle": 5})
    assert fifth.status_code == 200 and fifth.json()["cycle"] == 5, fifth.text
    again = http.post("/flows/example_flow/cycles", headers=JSON, json={"cycle": 5})
    assert again.status_code == 422, again.text

    stop = http.post("/flows/example_flow/stop", headers=JSON)
    assert stop.status_code == 200, stop.text
    assert stop.json()["flow_id"] == "example_flow" and stop.json()["status"] == "stopped"

    listed = http.get("/flows", params={"status": "stopped"}).json()
    assert any(f["flow_id"] == "example_flow" for f in listed["flows"])
    cycles = http.get("/flows/example_flow/cycles", params={"limit": 50}).json()["cycles"]
    assert {number, 5} <= {c["cycle"] for c in cycles}
    logs = http.get("/flows/example_flow/logs", params={"cycle": number}).json()["logs"]
    assert any("candles of BTCUSDT" in row["message"] for row in logs), logs


def test_document_component_stop_stops_that_component_only(http: httpx.Client, sleepers: list[str]) -> None:
    sleepers.append("component_flow")
    assert http.post("/flows/execute", json=hold_flow("component_flow")).status_code == 200
    number = http.post("/flows/component_flow/cycles").json()["cycle"]
    cycle_when(http, "component_flow", number, lambda c: states(c).get("hold") == "running")
    stop = http.post(f"/flows/component_flow/cycles/{number}/components/0/stop", headers=JSON)
    assert stop.status_code == 200, stop.text
    assert stop.json()["cycle"] == number and stop.json()["component"] == 0 and stop.json()["cancelled_tasks"] >= 1
    final = cycle_when(http, "component_flow", number, lambda c: c["status"] not in ("pending", "running"))
    assert states(final)["hold"] == "cancelled" and states(final)["aside"] == "completed", states(final)
    # a cycle that already ended has nothing to stop: a conflict naming its end (409); an unknown cycle is a 404
    ended = http.post(f"/flows/component_flow/cycles/{number}/components/0/stop")
    assert ended.status_code == 409 and "already ended (cancelled)" in ended.json()["detail"], ended.text
    assert http.post(f"/flows/component_flow/cycles/{number}/stop").status_code == 409
    assert http.post(f"/flows/component_flow/cycles/{number}/components/9/stop").status_code == 404
    assert http.post("/flows/component_flow/cycles/999/components/0/stop").status_code == 404


def test_document_price_node_example_reads_stored_candles(http: httpx.Client) -> None:
    reply = http.post("/nodes/execute", json=DOC_PRICE_NODE, headers=JSON)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["node_id"] == "binance_price_node_1" and body["status"] == "completed"
    price = body["outputs"]["price_data_handle"]
    assert price["count"] == 10 and price["last_price"] == price["close"][-1] > 0


def test_document_dex_trade_node_example_is_refused_naming_what_is_wrong(http: httpx.Client) -> None:
    # a DEX swap (chain, vault, token addresses) is not a venue TACore trades on: the type or its config is refused
    reply = http.post("/nodes/execute", json=DOC_TRADE_NODE, headers=JSON)
    assert reply.status_code == 422, reply.text
    locations = [tuple(d["loc"]) for d in reply.json()["detail"]]
    assert locations and all(loc == ("body", "node_type") or loc[:2] == ("body", "config")
                             for loc in locations), locations


def test_node_status_and_stop(http: httpx.Client, sleepers: list[str]) -> None:
    sleepers.append("node_flow")
    assert http.post("/flows/execute", json=hold_flow("node_flow")).status_code == 200
    number = http.post("/flows/node_flow/cycles").json()["cycle"]
    cycle_when(http, "node_flow", number, lambda c: states(c).get("hold") == "running")
    status = http.get("/nodes/hold/status", params={"flow_id": "node_flow"})
    assert status.status_code == 200, status.text
    assert [(t["flow_id"], t["status"]) for t in status.json()["tasks"]] == [("node_flow", "running")]
    stop = http.post("/nodes/hold/stop", json={"flow_id": "node_flow"})
    assert stop.status_code == 200 and stop.json() == {"node_id": "hold", "cancelled_tasks": 1}, stop.text
    final = cycle_when(http, "node_flow", number, lambda c: c["status"] not in ("pending", "running"))
    assert states(final)["hold"] == "cancelled"
    assert http.get("/nodes/no_such_node/status").status_code == 404


def test_node_types_and_stats(http: httpx.Client) -> None:
    types = http.get("/nodes/types")
    assert types.status_code == 200, types.text
    assert {"binance_price_node", "ai_model_node", "action_node"} <= {t["type"] for t in types.json()["node_types"]}
    reply = http.get("/stats")
    assert reply.status_code == 200, reply.text
    assert {"slots", "slots_used", "queued", "running"} <= set(reply.json())
    assert "cpu_percent" in reply.json()["resources"]["system"]


def test_unknown_flow_and_cycle_are_404(http: httpx.Client, sleepers: list[str]) -> None:
    assert http.get("/flows/no_such_flow/status").status_code == 404
    assert http.post("/flows/no_such_flow/stop").status_code == 404
    sleepers.append("flow404")
    assert http.post("/flows/execute", json=hold_flow("flow404")).status_code == 200
    missing = http.get("/flows/flow404/cycles/99")
    assert missing.status_code == 404 and missing.json()["component"] == "flow_scheduler"


def test_flow_routes_need_the_key_and_commands_the_header(flow_service: Service) -> None:
    with flow_service.client(key=None) as anonymous:
        assert anonymous.get("/flows").status_code == 401
        assert anonymous.post("/flows/execute", json=runnable_doc_flow()).status_code == 401
    with flow_service.client(key="wrong") as wrong:
        assert wrong.get("/stats").status_code == 401
    with flow_service.client(key=None, cookies={"tacore_api_key": str(flow_service.api_key)}) as dashboard:
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


def test_without_a_scheduler_flow_routes_are_503_and_nodes_still_run(bare_stack: Service) -> None:
    # broker, one pool worker and the sidecar, no flow scheduler: flow.* has nobody to serve it
    with bare_stack.client() as http:
        def sampled() -> bool:
            return http.get("/workers").status_code == 200

        wait_for(sampled, 30, "the sidecar's first broker poll")
        down = http.get("/flows")
        assert down.status_code == 503 and down.json()["component"] == "flow_scheduler", down.text
        assert "Retry-After" in down.headers
        node = http.post("/nodes/execute", json={"node_id": "n", "node_type": "action_node",
                                                 "config": {"action": "echo"}, "inputs": {"input": 7}})
        assert node.status_code == 200 and node.json()["outputs"] == {"output": {"input": 7}}, node.text
