"""End to end with real market data: ``tacore serve`` (the data agent, the broker, the order process) on
the exchange simulator with its clock at 60x, so a 1m candle closes every real second. A market order fills
at the data agent's latest price; a resting limit fills on the first candle that trades through it, at the
price the stored candle says, while nobody calls. (``--demo`` runs the same simulator at real time, where
the resting limit waited up to two real minutes for a candle.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from order_support import call, data, trading_config

from tacore.exchange_sim.config import SimConfig
from tacore.exchange_sim.server import ExchangeSimulator
from tacore.trading.model.money import to_decimal
from tests.support.processes import TACoreProcess, wait_until

D = Decimal


@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(SimConfig(alpaca=False, clock_speed=60.0, seed=3)) as running:
        yield running


def test_orders_fill_against_the_data_agent_s_prices_and_candles(tacore_factory: Callable[..., TACoreProcess],
                                                                 sim: ExchangeSimulator, tmp_path: Path) -> None:
    config = trading_config(tmp_path / "trading.yaml")
    tacore = tacore_factory(["serve", "--no-api"], TRADING_CONFIG=str(config), EXCHANGE_WS_URL=sim.ws_url,
                            EXCHANGE_REST_URL=sim.rest_url, DATA_AGENT_SYMBOLS=json.dumps(["BTCUSDT"]))
    tacore.wait_healthy(workers=2, timeout=90)

    def priced() -> dict[str, object] | None:
        reply = call(tacore, "get.market_data", {"symbols": ["BTCUSDT"]})
        entry = reply["data"]["symbols"]["BTCUSDT"] if reply["status"] == "success" else None
        return entry if entry and entry["status"] == "ok" else None

    wait_until(priced, 90, "the data agent's first BTCUSDT price", interval=0.5)

    def market_order() -> dict[str, object] | None:
        # On a loaded machine the agent may miss its heartbeats for seconds: the order process's 1 s quote
        # request then finds no price and the order is rejected saying so (a new order is the retry).
        order = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01"}))
        assert order["status"] == "filled" or order["reason"] == "no price for BTCUSDT", str(order)
        return order if order["status"] == "filled" else None

    order = wait_until(market_order, 90, "a market order priced by the data agent", interval=1.0)
    assert D(order["filled_avg_price"]) > 0

    def resting_limit() -> tuple[dict[str, object], Decimal, dict[str, object]] | None:
        """A buy limit a hair under the last price (so the next candles trade through it soon), placed again
        if the price dipped under it meanwhile and it filled on arrival."""
        quote = data(call(tacore, "get.market_data", {"symbols": ["BTCUSDT"]}))["symbols"]["BTCUSDT"]
        limit = (to_decimal(quote["price"]) * D("0.99999")).quantize(D("0.01"))
        order = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01",
                                                    "order_type": "limit", "price": str(limit),
                                                    "time_in_force": "gtc"}))
        return (quote, limit, order) if order["status"] == "new" else None

    quote, limit, resting = wait_until(resting_limit, 30, "a buy limit resting under the price", interval=0.2)
    filled = wait_until(lambda: (o := data(call(tacore, "order.get", {"order_id": resting["id"]})))["status"]
                        == "filled" and o, 60, "the resting limit to fill on a candle", interval=0.5)
    history = data(call(tacore, "kline.history", {"symbol": "BTCUSDT", "interval": "1m", "limit": 300}))["candles"]
    price = D(filled["filled_avg_price"])
    # market time: the order rests from the order process's own quote, at most a few real seconds (60x: minutes
    # of market time) older than the test's
    after = [c for c in history if c["closed"] and c["open_time"] >= quote["event_time"] - 10 * 60_000]
    candidates = [c for c in after if to_decimal(c["low"]) <= limit]  # candles that traded through it
    assert any(price == min(limit, to_decimal(c["open"])) for c in candidates), (price, limit, candidates[:3])
    (fill,) = data(call(tacore, "order.get", {"order_id": resting["id"], "include_fills": True}))["fills"]
    assert fill["liquidity"] == "maker"

