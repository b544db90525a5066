"""Support for the order process tests: a real ``tacore serve`` (broker, workers, recorder, order process)
whose prices come from a DATA_READY publisher the test owns (bound where the data agent would be)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml
import zmq

from tacore.events import data_ready_topic
from tests.support.processes import ROOT, TACoreProcess, raw_call, wait_until

MINUTE = 60_000


def trading_config(path: Path, *, costs: dict[str, Any] | None = None) -> Path:
    """The packaged markets with a ``paper`` account (the default) and a ``probe`` account for readiness."""
    raw = yaml.safe_load((ROOT / "config/trading_config.yaml").read_text())
    costs = costs or {"maker_fee_bps": "1", "taker_fee_bps": "2", "half_spread_bps": "0", "slippage_bps": "0"}
    raw["default_account"] = "paper"
    raw["accounts"] = {"paper": {"venue": "paper", "balances": {"USDT": "1000000"}, "costs": costs},
                       "probe": {"venue": "paper", "balances": {"USDT": "1000000"}, "costs": costs}}
    path.write_text(yaml.safe_dump(raw))
    return path


class CandleFeed:
    """Publishes closed 1m candles as the data agent would; a ticker republishes the last one until told."""

    def __init__(self, port: int) -> None:
        self.socket: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(f"tcp://127.0.0.1:{port}")
        self.minute = int(time.time() * 1000) // MINUTE * MINUTE - 10 * MINUTE
        self._last: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def candle(self, symbol: str, o: float, h: float, low: float, c: float, volume: float = 1000.0, *,
               open_ms: int | None = None) -> dict[str, Any]:
        start = self.minute if open_ms is None else open_ms
        body = {"symbol": symbol, "interval": "1m", "open_time": start, "close_time": start + MINUTE - 1,
                "open": o, "high": h, "low": low, "close": c, "volume": volume, "quote_volume": volume * c,
                "trades": 10, "taker_buy_base_volume": 0.0, "taker_buy_quote_volume": 0.0, "closed": True}
        with self._lock:
            self._send(body)
            self._last[symbol] = body
        return body

    def next_minute(self) -> int:
        self.minute += MINUTE
        return self.minute

    def _send(self, body: dict[str, Any]) -> None:
        event = {"event": "DATA_READY", "symbol": body["symbol"], "interval": "1m", "candle": body,
                 "ts_event": body["close_time"], "ts_publish": int(time.time() * 1000)}
        self.socket.send_multipart([data_ready_topic(body["symbol"], "1m").encode(), orjson.dumps(event)])

    def _tick(self) -> None:
        while not self._stop.wait(0.1):  # a late subscriber still hears the latest candle
            with self._lock:
                for body in self._last.values():
                    self._send(body)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.socket.close(0)


def call(tacore: TACoreProcess, method: str, params: dict[str, Any], request_id: str | None = None,
         timeout_ms: int = 5000) -> dict[str, Any]:
    return raw_call(tacore.frontend, {"request_id": request_id or uuid.uuid4().hex, "method": method,
                                      "params": params, "timeout_ms": timeout_ms}, timeout_ms + 1000)


def data(reply: dict[str, Any]) -> Any:
    assert reply["status"] == "success", json.dumps(reply)
    return reply["data"]


def wait_for_price(tacore: TACoreProcess, symbol: str, timeout: float = 30.0) -> None:
    """Until a probe order on ``symbol`` fills: the order process is up and has heard the feed."""

    def filled() -> bool:
        reply = call(tacore, "execute.order", {"symbol": symbol, "action": "buy", "quantity": "0.001",
                                               "account": "probe"})
        return reply["status"] == "success" and reply["data"]["status"] == "filled"

    wait_until(filled, timeout, f"the order process to price {symbol}", interval=0.3)
