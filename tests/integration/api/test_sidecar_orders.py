"""Orders over HTTP: the sidecar's ``/orders``, ``/positions`` and ``/balances`` against the real ``tacore serve``
(broker, recorder, order process, sidecar with an API key), priced by a DATA_READY feed the test owns; and the
same routes fuzzed by schemathesis."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import LazyPirateClient
from tests.integration.orders.order_support import CandleFeed, trading_config

from .sidecar_helpers import API_KEY, Service, free_ports, private_dir, service_env, spawn, wait_until

D = Decimal
BUY = {"symbol": "BTCUSDT", "action": "buy", "quantity": "2", "order_type": "market"}


class Trading(Service):
    feed: CandleFeed


@pytest.fixture(scope="module")
def trading() -> Iterator[Trading]:
    with private_dir("orders") as tmp:
        ports = free_ports(5)
        config = trading_config(tmp / "trading.yaml")
        env = service_env(tmp, ports, API_KEY=API_KEY, WORKER_COUNT="1", TRADING_CONFIG=str(config))
        svc = Trading(f"http://127.0.0.1:{ports[4]}", f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}",
                      API_KEY, tmp, env)
        svc.feed = CandleFeed(ports[2])  # where the data agent would publish DATA_READY
        try:
            svc.procs.append(spawn("serve", ["serve", "--no-data-agent"], env, tmp))
            svc.feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.0)
            with svc.client() as http:
                probe = {**BUY, "quantity": "0.001", "account": "probe"}
                wait_until(lambda: (r := http.post("/orders", json=probe)).status_code == 200
                           and r.json()["status"] == "filled", 90, "the order process priced through the sidecar",
                           interval=0.5)
            yield svc
        except BaseException:
            for proc in svc.procs:
                sys.stderr.write(f"--- {proc.name} output ---\n{proc.output()[-4000:]}\n")
            raise
        finally:
            svc.close()
            svc.feed.close()


@pytest.fixture
def http(trading: Trading) -> Iterator[httpx.Client]:
    with trading.client() as client:
        yield client


def test_an_order_placed_over_http_is_got_listed_valued_and_retried_by_its_idempotency_key(
        trading: Trading, http: httpx.Client) -> None:
    key = f"http-{uuid.uuid4().hex}"
    placed = http.post("/orders", json=BUY, headers={"Idempotency-Key": key})
    assert placed.status_code == 200, placed.text
    order = placed.json()
    assert (order["status"], order["filled_qty"], order["account"]) == ("filled", "2", "paper")
    again = http.post("/orders", json=BUY, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["id"] == order["id"]  # the same order, not a second one
    # the order's client_order_id (derived from the key) for another order: a conflict, whatever the key
    other = http.post("/orders", json={**BUY, "quantity": "3", "client_order_id": order["client_order_id"]})
    assert other.status_code == 409 and other.json()["component"] == "orders", other.text

    got = http.get(f"/orders/{order['id']}", params={"include_fills": "true"}).json()
    assert got["id"] == order["id"] and [f["qty"] for f in got["fills"]] == ["2"]
    listed = http.get("/orders", params={"status": "closed", "symbols": "BTCUSDT", "account": "paper"}).json()
    assert order["id"] in [o["id"] for o in listed["orders"]]
    positions = http.get("/positions", params={"account": "paper"}).json()["positions"]
    (btc,) = [p for p in positions if p["symbol"] == "BTCUSDT"]
    assert D(btc["qty"]) >= 2 and btc["current_price"] is not None and btc["unrealized_pl"] is not None
    balances = http.get("/balances", params={"account": "paper"}).json()
    assert balances["balances"][0]["asset"] == "USDT" and "paper" in balances["equity"]
    # the dashboard's recent fills: the newest fills across all orders (fill.list), this one's among them
    shown = wait_until(lambda: [f for f in http.get("/dashboard/data").json()["trading"]["fills"]
                                if f["order_id"] == order["id"]], 20, "the order's fill on the dashboard")
    assert (shown[0]["account"], shown[0]["order_type"], shown[0]["qty"]) == ("paper", "market", "2")


def test_a_resting_limit_is_open_until_cancelled_over_http(http: httpx.Client) -> None:
    limit = {"symbol": "BTCUSDT", "action": "buy", "quantity": "1", "order_type": "limit", "price": "50",
             "time_in_force": "gtc"}
    resting = http.post("/orders", json=limit).json()
    assert resting["status"] == "new" and resting["limit_price"] == "50"
    assert resting["id"] in [o["id"] for o in http.get("/orders").json()["orders"]]  # status open by default
    cancelled = http.delete(f"/orders/{resting['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "canceled"
    assert http.delete(f"/orders/{resting['id']}").json()["status"] == "canceled"  # what it became: no error
    assert resting["id"] not in [o["id"] for o in http.get("/orders").json()["orders"]]


def test_http_errors_name_the_problem(trading: Trading, http: httpx.Client) -> None:
    with trading.client(key=None) as anonymous:
        for method, path in (("GET", "/orders"), ("POST", "/orders"), ("GET", "/orders/x"), ("DELETE", "/orders/x"),
                             ("GET", "/positions"), ("GET", "/balances")):
            assert anonymous.request(method, path, json=BUY if method == "POST" else None).status_code == 401
        # a write takes the header only: the dashboard's cookie is not enough to place an order
        anonymous.cookies.set("tacore_api_key", API_KEY)
        assert anonymous.get("/orders").status_code == 200
        assert anonymous.post("/orders", json=BUY).status_code == 401
    no_price = http.post("/orders", json={**BUY, "order_type": "limit"})
    assert no_price.status_code == 422 and "limit price" in no_price.text
    unknown = http.post("/orders", json={**BUY, "account": "nobody"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "account"]
    assert http.get("/orders/no-such-order").status_code == 404
    assert http.delete("/orders/no-such-order").status_code == 404
    assert http.get("/orders", params={"symbols": "BTC USDT"}).status_code == 422
    assert http.get("/orders", params={"cursor": "bm90LWEtY3Vyc29y"}).status_code == 422
    poor = http.post("/orders", json={**BUY, "quantity": "100000000"}).json()
    assert poor["status"] == "rejected" and poor["reason"].startswith("insufficient funds")


def test_an_order_is_traced_from_logs_to_its_call_with_params_and_errors_secrets_redacted(
        trading: Trading, http: httpx.Client) -> None:
    key = f"trace-{uuid.uuid4().hex}"
    order = http.post("/orders", json=BUY, headers={"Idempotency-Key": key}).json()
    assert order["request_id"] == key  # the order names its call...
    with LazyPirateClient(trading.frontend, timeout_ms=5000, retries=0) as client:
        refused = client.request("execute.order", {**BUY, "api_key": "sekrit-1", "nested": {"password": "pw"}},
                                 request_id=f"{key}-bad")
    assert refused["error"]["code"] == "INVALID_PARAMS"

    def logged(request_id: str) -> dict[str, Any] | None:
        items = http.get("/logs", params={"request_id": request_id}).json()["items"]
        return items[0] if items else None

    row = wait_until(lambda: logged(key), 10, "the order's call in the request log")  # ...and /logs shows it
    assert (row["method"], row["status"], row["error_code"]) == ("execute.order", "success", None)
    assert row["params"] == BUY and row["error_message"] is None
    bad = wait_until(lambda: logged(f"{key}-bad"), 10, "the refused call in the request log")
    assert bad["params"]["api_key"] == "***" and bad["params"]["nested"] == {"password": "***"}
    assert bad["params"]["symbol"] == "BTCUSDT" and "api_key" in bad["error_message"]
    assert "sekrit" not in http.get("/logs", params={"method": "execute.order", "limit": 1000}).text


#: GET /orders: a cursor matching the schema's pattern may still not be one the server gave (422); POST /orders:
#: the body's cross-field rules (a limit price for limit orders only, quantity x price...) and amounts above 0
#: are in the schema's descriptions, not its JSON Schema, so a valid-looking body may be 422. These two run
#: every check but positive_data_acceptance; the other operations every check.
LOOSE = ("GET /orders", "POST /orders")


def _schemathesis(trading: Trading, tmp_path: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{trading.base_url}/openapi.json", *selection,
        "--header", f"X-API-Key: {trading.api_key}", "--max-examples", "30", "--workers", "1", "--seed", "14",
        "--request-timeout", "15", "--generation-database", "none", "--no-color",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=tmp_path, check=False)


@pytest.mark.timeout(600)
def test_schemathesis_over_the_order_routes_finds_no_server_error_and_no_undocumented_answer(
        trading: Trading, tmp_path: Path) -> None:
    strict = _schemathesis(trading, tmp_path, "--include-path-regex", "^/(orders|positions|balances)",
                           *[arg for name in LOOSE for arg in ("--exclude-name", name)], "--checks", "all")
    assert strict.returncode == 0, strict.stdout[-12000:] + strict.stderr[-3000:]
    loose = _schemathesis(trading, tmp_path, *[arg for name in LOOSE for arg in ("--include-name", name)],
                          "--checks", "all", "--exclude-checks", "positive_data_acceptance")
    assert loose.returncode == 0, loose.stdout[-12000:] + loose.stderr[-3000:]


def test_the_order_routes_document_the_key_the_errors_and_the_rules(http: httpx.Client) -> None:
    document: dict[str, Any] = http.get("/openapi.json").json()
    for path in ("/orders", "/orders/{order_id}", "/positions", "/balances"):
        for method, operation in document["paths"][path].items():
            codes = set(operation["responses"])
            assert {"200", "401", "422", "503"} <= codes and operation.get("security"), (method, path, codes)
    body = document["components"]["schemas"]["OrderBody"]
    assert body["additionalProperties"] is False and set(body["required"]) == {"symbol", "action", "quantity"}
    assert "409" in document["paths"]["/orders"]["post"]["responses"]


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_dashboard_shows_open_orders_recent_fills_and_positions_with_p_and_l_in_chromium(
        trading: Trading, http: httpx.Client, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    sold = http.post("/orders", json={"symbol": "ETHUSDT", "action": "sell", "quantity": "1"}).json()
    assert sold["status"] in ("filled", "rejected")  # no ETH held or priced: either way not a position
    trading.feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.0, open_ms=trading.feed.next_minute())
    bought = http.post("/orders", json={**BUY, "account": "paper"}).json()
    resting = http.post("/orders", json={"symbol": "BTCUSDT", "action": "buy", "quantity": "0.5",
                                         "order_type": "limit", "price": "42.5", "time_in_force": "gtc"}).json()
    assert bought["status"] == "filled" and resting["status"] == "new"
    trading.feed.candle("BTCUSDT", 100.0, 111.0, 99.0, 110.0, open_ms=trading.feed.next_minute())  # a gain
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(f"{trading.base_url}/?api_key={trading.api_key}")
            page.wait_for_function("document.querySelector('#trading-state').textContent === 'orders up'",
                                   timeout=15_000)
            # ids show their first 8 characters, the whole id on hover
            page.wait_for_selector(f"#open-orders-table td[title='{resting['id']}']", timeout=15_000)
            page.wait_for_selector(f"#fills-table td[title='{bought['id']}']", timeout=15_000)
            page.wait_for_function("[...document.querySelectorAll('#positions-table tbody tr')].some(r => "
                                   "r.innerText.includes('BTCUSDT') && r.innerText.includes('paper') && "
                                   "r.querySelector('td.gain'))", timeout=15_000)
            opened = page.inner_text("#open-orders-table")
            assert "42.5" in opened and "limit" in opened and "new" in opened
            fills = page.inner_text("#fills-table")
            assert "taker" in fills and "BTCUSDT" in fills
            row = page.locator("#positions-table tbody tr", has_text="paper").filter(has_text="BTCUSDT")
            cells = row.first.locator("td").all_inner_texts()
            assert cells[2] == "long" and cells[5] == "110" and D(cells[7]) > 0  # marked to the newest close
            page.screenshot(path=str(tmp_path / "trading.png"), full_page=True)
        finally:
            browser.close()
    assert problems == [], problems
    assert (tmp_path / "trading.png").stat().st_size > 10_000
