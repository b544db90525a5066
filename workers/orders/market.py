"""The order process's view of the market through the broker: latest quotes (``get.market_data``) and
stored candles (``kline.history``), each call bounded by the request being served.

Each thread that asks gets its own client (a REQ socket belongs to one thread). A data agent that is not
running (``UNKNOWN_METHOD``), does not answer in time or has no data all mean "no price": the paper
venue then rejects the order with that reason rather than fill it at a price it does not have.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from clients import LazyPirateClient, RemoteError, RequestTimeout
from tacore.auth.credentials import client_keys
from tacore.settings import Settings
from tacore.trading.model.market import Candle, Quote
from tacore.trading.model.money import to_decimal
from workers.context import bound_timeout

log = logging.getLogger("tacore.orders")

QUOTE_TIMEOUT_S = 1.0
HISTORY_TIMEOUT_S = 5.0
HISTORY_PAGE = 1000
_WARN_EVERY_S = 30.0


class BrokerMarket:
    def __init__(self, settings: Settings, *, want_volume: bool = False) -> None:
        self.endpoint = settings.client_endpoint
        self.curve = client_keys(settings)  # a broker with keys on: the client key (kline.history needs read)
        self.want_volume = want_volume  # a volume cap is set: an arrival needs the last closed candle's volume
        self._local = threading.local()
        self._clients: list[LazyPirateClient] = []
        self._lock = threading.Lock()
        self._warned: dict[str, float] = {}

    def _client(self) -> LazyPirateClient:
        client: LazyPirateClient | None = getattr(self._local, "client", None)
        if client is None:
            client = LazyPirateClient(self.endpoint, timeout_ms=int(QUOTE_TIMEOUT_S * 1000), retries=0, internal=True,
                                      curve=self.curve)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _call(self, method: str, params: dict[str, Any], cap_s: float) -> Any:
        timeout_s = bound_timeout(cap_s)
        try:
            return self._client().call(method, params, timeout_ms=timeout_s * 1000, deadline_ms=timeout_s * 1000)
        except (RemoteError, RequestTimeout) as exc:
            self._warn(method, f"{method}: {exc}")
            return None

    def _warn(self, key: str, message: str) -> None:
        now = time.monotonic()
        if now - self._warned.get(key, -1e9) > _WARN_EVERY_S:
            self._warned[key] = now
            log.warning("market data: %s", message)

    # -- quotes -----------------------------------------------------------------------------------------
    def quotes(self, symbols: list[str]) -> dict[str, Quote | None]:
        """The data agent's latest price per symbol (None where it has none)."""
        found: dict[str, Quote | None] = dict.fromkeys(symbols)
        if not symbols:
            return found
        data = self._call("get.market_data", {"symbols": symbols}, QUOTE_TIMEOUT_S)
        entries = (data or {}).get("symbols", {}) if isinstance(data, dict) else {}
        for symbol in symbols:
            entry = entries.get(symbol)
            if not isinstance(entry, dict) or entry.get("status") != "ok" or entry.get("price") is None:
                continue
            volume = open_ms = None
            candle = entry.get("candle_1m")
            if isinstance(candle, dict) and candle.get("closed"):
                volume, open_ms = to_decimal(candle["volume"]), int(candle["open_time"])
            elif self.want_volume:
                last = self.last_closed(symbol)
                if last is not None:
                    volume, open_ms = last.volume, last.open_ms
            found[symbol] = Quote(symbol, to_decimal(entry["price"]), int(entry["event_time"]), volume, open_ms)
        return found

    # -- candles ----------------------------------------------------------------------------------------
    def last_closed(self, symbol: str) -> Candle | None:
        data = self._call("kline.history", {"symbol": symbol, "interval": "1m", "limit": 2}, QUOTE_TIMEOUT_S)
        closed = [c for c in (data or {}).get("candles", []) if c.get("closed")] if isinstance(data, dict) else []
        return Candle.from_wire(closed[-1]) if closed else None

    def closed_candles(self, symbol: str, start_ms: int, end_ms: int) -> list[Candle] | None:
        """Closed 1m candles opening in [start_ms, end_ms], oldest first; None when they cannot be read."""
        out: list[Candle] = []
        cursor = start_ms
        while cursor <= end_ms:
            data = self._call("kline.history", {"symbol": symbol, "interval": "1m", "start": cursor, "end": end_ms,
                                                "limit": HISTORY_PAGE}, HISTORY_TIMEOUT_S)
            if not isinstance(data, dict):
                return None
            page = data.get("candles", [])
            out.extend(Candle.from_wire(c) for c in page if c.get("closed"))
            if len(page) < HISTORY_PAGE:
                break
            cursor = int(page[-1]["open_time"]) + 60_000
        return out

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
