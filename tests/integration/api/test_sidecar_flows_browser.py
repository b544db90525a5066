"""The dashboard's flows page in a real browser (Debian's chromium driven by Playwright): a running flow's
DAG drawn with each node's state, its recent cycles and task logs, with no request outside the sidecar.

The service is ``tacore serve --demo`` (the real scheduler and pool); the flow's middle node sleeps, so the
cycle stays running with known states: the price node done, the sleeper running, its successor pending.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .sidecar_helpers import Service
from .test_sidecar_browser import CHROMIUM, CHROMIUM_ARGS
from .test_sidecar_flows import defuse

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

FLOW = {
    "flow_id": "browser_flow", "cycle_interval": "1h", "priority": 3,
    "flow_json": {
        "nodes": [
            {"id": "price", "type": "binance_price_node",
             "config": {"symbol": "BTCUSDT", "interval": "1h", "limit": 20}},
            {"id": "smooth", "type": "action_node", "config": {"action": "sleep", "duration_ms": 300_000}},
            {"id": "signal", "type": "condition_node", "config": {"op": "gt", "left": 1, "right": 0}},
            {"id": "collect", "type": "action_node", "config": {"action": "collect_real_time_data"}},
        ],
        "edges": [{"source": "price", "target": "smooth", "sourceHandle": "price_data_handle"},
                  {"source": "smooth", "target": "signal"}],
    },
}
EXPECTED = {"price": "completed", "smooth": "running", "signal": "pending", "collect": "completed"}


def _wait_for(page: Any, predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(200)
    raise AssertionError(f"the page did not show {what} within {timeout_s:.0f} s")


def test_flows_page_draws_a_running_flows_dag_with_node_states(flow_service: Service, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    service = flow_service
    with service.client() as http:
        reply = http.post("/flows/execute", json=FLOW)
        assert reply.status_code == 200, reply.text
        number = http.post("/flows/browser_flow/cycles").json()["cycle"]
    outside: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)

            def only_loopback(route: Any) -> None:
                if route.request.url.startswith(service.base_url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_loopback)
            page.goto(f"{service.base_url}/?api_key={service.api_key}")  # sets the dashboard's cookie
            page.click("#flows-link")
            page.wait_for_url("**/dashboard/flows**")
            page.click("#flows-table tbody tr[data-flow-id='browser_flow']")
            _wait_for(page, lambda: page.locator("#dag g.node").count() == 4, 10, "the flow's four nodes")

            def states() -> dict[str, str]:
                nodes = page.locator("#dag g.node")
                return {str(nodes.nth(i).get_attribute("data-node-id")): str(nodes.nth(i).get_attribute("data-state"))
                        for i in range(nodes.count())}

            _wait_for(page, lambda: states() == EXPECTED, 30, f"the node states {EXPECTED} (saw {states()})")
            assert page.locator("#dag path.edge").count() == 2
            # layers left to right: price, then smooth, then signal; collect is a root of its own component
            xs = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#dag g.node')].map(
                (g) => [g.dataset.nodeId, g.transform.baseVal.getItem(0).matrix.e]))""")  # one read: it redraws
            assert xs["price"] < xs["smooth"] < xs["signal"] and xs["collect"] == xs["price"]
            assert "running" in (page.text_content("#dag g.node[data-node-id='smooth']") or "")
            assert "scheduler up" in page.inner_text("#flows-state")
            row = page.inner_text("#flows-table tbody tr[data-flow-id='browser_flow']")
            assert "active" in row and "schedule 1h" in row
            assert f"cycle {number}" in page.inner_text("#dag-title")
            _wait_for(page, lambda: "running" in page.inner_text(f"#cycles-table tr[data-cycle='{number}']"), 5,
                      "the cycle as running")
            _wait_for(page, lambda: "candles of BTCUSDT" in page.inner_text("#logs-table"), 5, "the task logs")
            page.screenshot(path=str(tmp_path / "flows.png"), full_page=True)

            with service.client() as http:  # stopping a component shows at the next poll
                assert http.post(f"/flows/browser_flow/cycles/{number}/components/0/stop").status_code == 200
                assert http.post("/flows/browser_flow/stop").status_code == 200
            _wait_for(page, lambda: states()["smooth"] == "cancelled"
                      and states()["signal"] in ("cancelled", "skipped"), 10, "the stopped nodes as cancelled")
            assert states()["price"] == "completed"
        finally:
            browser.close()
            with service.client() as http:
                defuse(http, "browser_flow")
    assert (tmp_path / "flows.png").stat().st_size > 10_000
    assert outside == [], f"the page reached outside the sidecar: {outside}"
    assert problems == [], problems
