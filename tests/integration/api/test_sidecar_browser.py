"""The dashboard in a real browser (Debian's chromium driven by Playwright): it loads with no internet,
shows live numbers, and those numbers move when requests go through the broker."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from clients import LazyPirateClient

from .sidecar_helpers import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def _number(text: str) -> float | None:
    cleaned = text.replace(",", "").replace("%", "").strip()
    try:
        return float(cleaned)
    except ValueError:
        return None


def _wait_for(page: Any, predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(200)
    raise AssertionError(f"the page did not show {what} within {timeout_s:.0f} s")


def test_dashboard_updates_live_in_chromium(service: Service, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with service.client() as http:  # something for the market-data panel to show
        assert http.post("/symbols/add", json={"symbols": ["BTCUSDT", "ETHUSDT"]}).status_code == 200
    outside: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)

            def only_loopback(route: Any) -> None:
                if route.request.url.startswith(service.base_url):
                    route.continue_()
                else:  # the page must not need the internet
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_loopback)
            page.goto(f"{service.base_url}/?api_key={service.api_key}")
            assert page.url.rstrip("/") == service.base_url  # the key left the address bar
            _wait_for(page, lambda: "broker up" in page.inner_text("#broker-state"), 10, "the broker as up")
            before = _wait_for(page, lambda: _number(page.inner_text("#requests-total")), 10, "a request total")

            with LazyPirateClient(service.frontend, timeout_ms=3000, retries=1) as client:
                prefix = uuid.uuid4().hex
                for i in range(150):
                    client.request("health.check", {}, request_id=f"browser-{prefix}-{i}")
                for i in range(3):
                    client.request("health.check", {"detailed": "nope"}, request_id=f"browser-{prefix}-bad-{i}")

            after = _wait_for(page, lambda: (n := _number(page.inner_text("#requests-total"))) and n >= before + 153
                              and n, 8, "the request total grow by 153")
            assert after >= before + 153
            _wait_for(page, lambda: (rps := _number(page.inner_text("#rps-1m"))) and rps > 0, 5, "a request rate")
            assert page.locator("#workers-table tbody tr").count() >= 3
            assert "health.check" in page.inner_text("#methods-table")
            _wait_for(page, lambda: f"browser-{prefix}-bad" in page.inner_text("#errors-table"), 6,
                      "the new errors in the recent-errors table")
            assert "fake-agent" in page.inner_text("#workers-table")
            _wait_for(page, lambda: "ETHUSDT" in page.inner_text("#kline-symbols-table"), 5, "the subscribed symbols")
            assert "1m 5m 15m 30m 1h 4h 1d" in page.inner_text("#kline-symbols-table")
            assert "connected" in page.inner_text("#kline-conn-table")
            assert _number(page.inner_text("#cache-hit-rate")) == 75.0  # the fake agent: 3 hits per miss
            assert "missed" in (page.get_attribute("#tile-cache", "class") or "")  # under the seed's 90 %
            assert page.locator("#chart-rps canvas").count() == 1
            assert page.locator("#chart-latency canvas").count() == 1
            page.wait_for_timeout(1200)  # one more tick so the chart has the burst
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            # TACore's own calls (the sidecar's kline polls) join the figures only when switched on
            users = _number(page.inner_text("#requests-total"))
            page.check("#show-internal")
            _wait_for(page, lambda: (n := _number(page.inner_text("#requests-total"))) and n > users, 8,
                      "the request total to include TACore's own calls")
            page.uncheck("#show-internal")
            _wait_for(page, lambda: _number(page.inner_text("#requests-total")) == users, 8,
                      "the user total again")

            page.goto(f"{service.base_url}/docs")  # Swagger UI, also from the package only
            page.wait_for_selector("text=/workers", timeout=10_000)
            assert "TACore monitoring sidecar" in page.inner_text(".swagger-ui .info")
        finally:
            browser.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert outside == [], f"the page reached outside the sidecar: {outside}"
    assert problems == [], problems


_COUNT_CANDLE_PIXELS = """(el) => {
  const canvas = el.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let up = 0, down = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    if (r === 0x3f && g === 0xb9 && b === 0x50) up++;
    if (r === 0xf8 && g === 0x51 && b === 0x49) down++;
  }
  return {up, down};
}"""


def test_dashboard_shows_24h_change_and_candles_of_the_real_agent(demo: Service, tmp_path: Path) -> None:
    """The demo's data agent: the market table shows each symbol's price and 24 h change (as
    get.market_data says), and the candle chart draws the symbol's /klines candles, green and red."""
    from playwright.sync_api import sync_playwright

    with demo.client() as http:  # the figures the page must show
        expected = _wait_for_http(lambda: (e := http.get("/market/BTCUSDT").json()).get("change_24h_pct")
                                  is not None and e, 90, "BTCUSDT's 24 h change")
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.goto(f"{demo.base_url}/?api_key={demo.api_key}")
            row = page.locator("#kline-symbols-table tbody tr[data-symbol='BTCUSDT']")
            change = _wait_for(page, lambda: row.count() and (t := row.locator("td.change").inner_text()) != "–"
                               and t, 30, "BTCUSDT's 24 h change")
            shown = _number(change)
            assert shown is not None and change.endswith("%")
            # the price moves between the two reads: same sign (or both flat) and within a point of each other
            assert abs(shown - expected["change_24h_pct"]) < 1.0, (change, expected["change_24h_pct"])
            assert ("up" if shown > 0 else "down" if shown < 0 else "") in (row.locator("td.change")
                                                                             .get_attribute("class") or "")
            assert _number(row.locator("td.price").inner_text()) == pytest.approx(expected["price"], rel=0.05)

            chart = page.locator("#chart-candles")
            row.click()  # BTCUSDT is the first priced symbol, so the chart shows it either way
            _wait_for(page, lambda: chart.get_attribute("data-symbol") == "BTCUSDT"
                      and int(chart.get_attribute("data-candles") or 0) >= 100, 30, "BTCUSDT's candles")
            assert chart.get_attribute("data-interval") == "1h"
            pixels = _wait_for(page, lambda: (p := chart.evaluate(_COUNT_CANDLE_PIXELS))["up"] > 200
                               and p["down"] > 200 and p, 10, "green and red candles on the canvas")
            assert pixels["up"] > 200 and pixels["down"] > 200

            page.select_option("#candle-interval", "1d")  # another interval, another fetch
            page.locator("#kline-symbols-table tbody tr[data-symbol='ETHUSDT']").click()
            _wait_for(page, lambda: chart.get_attribute("data-symbol") == "ETHUSDT"
                      and chart.get_attribute("data-interval") == "1d"
                      and int(chart.get_attribute("data-candles") or 0) >= 100, 30, "ETHUSDT's daily candles")
            assert "last close" in page.inner_text("#candle-state")
            page.screenshot(path=str(tmp_path / "candles.png"), full_page=True)
        finally:
            browser.close()
    assert problems == [], problems


def _wait_for_http(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout_s:.0f} s")
