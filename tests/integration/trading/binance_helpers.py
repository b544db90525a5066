"""The Binance venue wired to a real exchange simulator: fresh accounts per test, orders built like the
engine builds them, the simulator's ground truth and fault controls."""

from __future__ import annotations

import secrets
import string
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from tacore.trading.model import Order, OrderType, Side, TimeInForce
from tacore.trading.venues.binance import BinanceVenue
from tacore.trading.venues.binance_rest import BinanceRestClient
from tacore.trading.venues.binance_signing import BinanceCredentials

D = Decimal
_ALNUM = string.ascii_letters + string.digits


def new_key() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(64))


class SimControl:
    """The simulator's control routes."""

    def __init__(self, rest_url: str) -> None:
        self.url = rest_url

    def add_account(self, balances: dict[str, str], **extra: Any) -> tuple[str, str]:
        key, secret = new_key(), new_key()
        answer = httpx.post(f"{self.url}/_sim/spot/account",
                            json={"api_key": key, "secret_key": secret, "balances": balances, **extra})
        assert answer.status_code == 200, answer.text
        return key, secret

    def truth(self, api_key: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/_sim/spot/account", params={"api_key": api_key})
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        return data

    def orders_with(self, api_key: str, client_order_id: str) -> list[dict[str, Any]]:
        return [o for o in self.truth(api_key)["orders"] if o["clientOrderId"] == client_order_id]

    def spot_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(f"{self.url}/_sim/stats").json()["spot"]
        return stats

    def fail_next(self, status: int, retry_after: int = 1, count: int = 1) -> None:
        httpx.post(f"{self.url}/_sim/rest_failures",
                   json={"api": "spot", "status": status, "retry_after": retry_after, "count": count})

    def reply_fault(self, mode: str, seconds: float = 0.0) -> None:
        httpx.post(f"{self.url}/_sim/spot/reply_faults", json={"mode": mode, "seconds": seconds})

    def skew(self, ms: int, *, hide_from_time: bool = False) -> None:
        httpx.post(f"{self.url}/_sim/clock", json={"skew_ms": ms, "hide_from_time": hide_from_time})

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sim/reset_limits", json={})
        self.skew(0)


def make_venue(rest_url: str, key: str, secret: str, *, timeout_s: float = 2.0, recv_window_ms: int = 5_000,
               settle_margin_ms: int = 11_000, max_wait_s: float = 2.0, quotes: Any = None) -> BinanceVenue:
    creds = BinanceCredentials(SecretStr(key), SecretStr(secret), "TEST_KEY / TEST_SECRET")
    client = BinanceRestClient(rest_url, creds, timeout_s=timeout_s, recv_window_ms=recv_window_ms,
                               max_wait_s=max_wait_s)
    return BinanceVenue("live", client, quotes=quotes, settle_margin_ms=settle_margin_ms)


def make_order(symbol: str = "BTCUSDT", side: str = "buy", type: str = "market", qty: str = "0.01",
               tif: str = "gtc", limit: Decimal | str | None = None, stop: Decimal | str | None = None,
               client_order_id: str | None = None) -> Order:
    quote = "USDT" if symbol.endswith("USDT") else symbol[-3:]
    return Order.accept(
        account="live", client_order_id=client_order_id or f"t-{uuid.uuid4().hex[:20]}", venue="binance",
        symbol=symbol, asset_class="crypto", quote_asset=quote, side=Side(side), type=OrderType(type),
        time_in_force=TimeInForce(tif), qty=D(qty), limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop), payload_hash="test", request_id=None,
        ts_ms=int(time.time() * 1000))
