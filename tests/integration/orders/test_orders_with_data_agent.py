"""End to end with the real market data: ``tacore serve --demo`` (the exchange simulator at 60x, the data
agent, the broker, the order process). A market order fills at the data agent's latest price; a resting
limit fills on the first candle that trades through it, at the price the stored candle says, while
nobody calls."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from order_support import call, data, trading_config

from tacore.trading.model.money import to_decimal
from tests.support.processes import TACoreProcess, wait_until

D = Decimal


def test_orders_fill_against_the_data_agent_s_prices_and_candles(tacore_factory: Callable[..., TACoreProcess],
                                                                 tmp_path: Path) -> None:
    config = trading_config(tmp_path / "trading.yaml")
    tacore = tacore_factory(["serve", "--demo", "--no-api"], TRADING_CONFIG=str(config))
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

    quote = data(call(tacore, "get.market_data", {"symbols": ["BTCUSDT"]}))["symbols"]["BTCUSDT"]
    last = to_decimal(quote["price"])
    limit = (last * D("0.9999")).quantize(D("0.01"))
    resting = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01",
                                                  "order_type": "limit", "price": str(limit),
                                                  "time_in_force": "gtc"}))
    if resting["status"] == "filled":  # the price moved below the limit meanwhile: marketable on arrival
        return
    assert resting["status"] == "new"
    filled = wait_until(lambda: (o := data(call(tacore, "order.get", {"order_id": resting["id"]})))["status"]
                        == "filled" and o, 120, "the resting limit to fill on a candle", interval=0.5)
    history = data(call(tacore, "kline.history", {"symbol": "BTCUSDT", "interval": "1m", "limit": 300}))["candles"]
    price = D(filled["filled_avg_price"])
    after = [c for c in history if c["closed"] and c["open_time"] >= quote["event_time"] - 60_000]  # market time
    candidates = [c for c in after if to_decimal(c["low"]) <= limit]  # candles that traded through it
    assert any(price == min(limit, to_decimal(c["open"])) for c in candidates), (price, limit, candidates[:3])
    (fill,) = data(call(tacore, "order.get", {"order_id": resting["id"], "include_fills": True}))["fills"]
    assert fill["liquidity"] == "maker"

