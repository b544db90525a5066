"""Resting orders on the simulator fill as its own price path crosses them: limits at their price as
maker (in parts when the path offers less than they want), stops when their price is reached.

The path is a pure function of seed, symbol and time, so a test looks ahead along it (``path_points``)
and prices its order where the path will be a few simulated seconds later; the clock runs 20x.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from spot_helpers import RawSpot, add_account

from tacore.exchange_sim import ExchangeSimulator, SimConfig

D = Decimal
SPEED = 20.0
START = 1_800_000_000_000  # a fixed start: the path each run meets is (nearly) the same


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(SimConfig(alpaca=False, clock_speed=SPEED, seed=5, start_time_ms=START)) as running:
        yield running


@pytest.fixture
def spot(sim: ExchangeSimulator) -> Iterator[RawSpot]:
    key, secret = add_account(sim.rest_url, {"USDT": "1000000", "BTC": "10", "ETH": "10"}, commission="0.001")
    client = RawSpot(sim.rest_url, key, secret)
    client.fresh_time = True  # the simulated clock runs 20x: stamp each request with the server's time
    # Binance's widest window (60 s) is 3 s of real time at 20x; the default 5 s was 250 ms, which a loaded
    # machine spent once between asking the time and sending the request (-1021)
    client.recv_window = 60_000
    yield client
    client.close()


def upcoming(sim: ExchangeSimulator, symbol: str, lead_ms: int, span_ms: int) -> list[tuple[int, Decimal]]:
    """(time, price) of the path's points from ``lead_ms`` to ``lead_ms + span_ms`` ahead of the clock."""
    now = sim.hub.clock.now_ms()
    points = sim.call(lambda: list(sim.spot.engine.path_points(symbol, now + lead_ms, now + lead_ms + span_ms)))
    return [(t, p) for t, p, _ in points]


def min_qty(sim: ExchangeSimulator, symbol: str, price: Decimal) -> Decimal:
    """The smallest quantity of whole lots worth at least 10 quote units (above the minimum notional)."""
    step = sim.spot.rules(symbol).step  # type: ignore[union-attr]
    lots = int(D(10) / price / step) + 1
    return step * lots


def wait_for(spot: RawSpot, symbol: str, client_id: str, statuses: set[str], timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        order = spot.ok("GET", "/api/v3/order", symbol=symbol, origClientOrderId=client_id)
        if order["status"] in statuses or time.monotonic() > deadline:
            return order
        time.sleep(0.1)


def crossing(sim: ExchangeSimulator, symbol: str) -> tuple[str, Decimal, Decimal]:
    """A side and price the path reaches 10 to 60 simulated seconds from now, beyond the current price:
    (BUY, its low, now) when it comes down, else (SELL, its high, now)."""
    now_price: Decimal = sim.call(sim.spot.engine.price, symbol)
    prices = [p for _, p in upcoming(sim, symbol, 10_000, 50_000)]
    if min(prices) < now_price:
        return "BUY", min(prices), now_price
    assert max(prices) > now_price, "the path stays flat for a simulated minute"
    return "SELL", max(prices), now_price


def test_a_resting_limit_fills_at_its_price_as_maker_when_the_path_reaches_it(
        sim: ExchangeSimulator, spot: RawSpot) -> None:
    side, limit, _ = crossing(sim, "BTCUSDT")
    qty = min_qty(sim, "BTCUSDT", limit)
    placed = spot.ok("POST", "/api/v3/order", symbol="BTCUSDT", side=side, type="LIMIT", timeInForce="GTC",
                     quantity=str(qty), price=str(limit), newClientOrderId="rest-1")
    assert placed["status"] == "NEW"
    done = wait_for(spot, "BTCUSDT", "rest-1", {"FILLED"})
    assert done["status"] == "FILLED"
    trades = spot.ok("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=placed["orderId"])
    assert all(D(t["price"]) == limit and t["isMaker"] is True for t in trades)
    assert sum(D(t["qty"]) for t in trades) == qty
    assert all(t["time"] >= placed["transactTime"] for t in trades)


def test_a_large_resting_order_fills_in_parts_and_keeps_the_rest_locked(sim: ExchangeSimulator, spot: RawSpot) -> None:
    side, limit, _ = crossing(sim, "BTCUSDT")
    # 5 BTC: each point offers 1/14 of a minute's volume (a BTCUSDT minute trades well under 5 BTC here)
    placed = spot.ok("POST", "/api/v3/order", symbol="BTCUSDT", side=side, type="LIMIT", timeInForce="GTC",
                     quantity="5", price=str(limit), newClientOrderId="big-1")
    part = wait_for(spot, "BTCUSDT", "big-1", {"PARTIALLY_FILLED", "FILLED"})
    assert part["status"] == "PARTIALLY_FILLED"
    executed = D(part["executedQty"])
    assert D(0) < executed < D(5)
    canceled = spot.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="big-1")
    assert canceled["status"] == "CANCELED" and D(canceled["executedQty"]) >= executed
    trades = spot.ok("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=placed["orderId"])
    filled = sum(D(t["qty"]) for t in trades)
    assert filled == D(canceled["executedQty"])
    balances = {b["asset"]: b for b in spot.ok("GET", "/api/v3/account")["balances"]}
    assert D(balances["BTC"]["locked"]) == 0 and D(balances["USDT"]["locked"]) == 0
    commission = sum(D(t["commission"]) for t in trades)
    if side == "BUY":
        assert D(balances["BTC"]["free"]) == D(10) + filled - commission
        assert D(balances["USDT"]["free"]) == D(1_000_000) - filled * limit
    else:
        assert D(balances["BTC"]["free"]) == D(10) - filled
        assert D(balances["USDT"]["free"]) == D(1_000_000) + filled * limit - commission


def test_a_stop_waits_for_its_price_then_fills_at_it(sim: ExchangeSimulator, spot: RawSpot) -> None:
    side, stop, _ = crossing(sim, "ETHUSDT")
    side = "SELL" if side == "BUY" else "BUY"  # a sell stop below the price, a buy stop above it
    placed = spot.ok("POST", "/api/v3/order", symbol="ETHUSDT", side=side, type="STOP_LOSS",
                     quantity=str(min_qty(sim, "ETHUSDT", stop)), stopPrice=str(stop), newClientOrderId="stop-1",
                     newOrderRespType="RESULT")
    assert (placed["status"], placed["workingTime"], placed["stopPrice"]) == ("NEW", -1, f"{stop:.8f}")
    waiting = spot.ok("GET", "/api/v3/order", symbol="ETHUSDT", origClientOrderId="stop-1")
    assert waiting["isWorking"] is False
    done = wait_for(spot, "ETHUSDT", "stop-1", {"FILLED"})
    assert done["status"] == "FILLED" and done["isWorking"] is True
    (trade,) = spot.ok("GET", "/api/v3/myTrades", symbol="ETHUSDT", orderId=placed["orderId"])
    assert D(trade["price"]) == stop and trade["isMaker"] is False
