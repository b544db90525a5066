"""Binance's exact wire formats: kline events, combined-stream wrapping, REST rows, error bodies.

Kline events are built with string templates rather than json.dumps: the feed formats tens of
thousands of them a second, and the field order then matches Binance's byte for byte.
"""

from __future__ import annotations

from typing import Any

import orjson

from tacore.exchange_sim.candle import Candle, fmt_units


def kline_body(symbol: str, interval: str, c: Candle, closed: bool) -> str:
    """The ``k`` object of a kline event."""
    return (
        f'{{"t":{c.open_time},"T":{c.close_time},"s":"{symbol}","i":"{interval}",'
        f'"f":{c.first_trade_id},"L":{c.last_trade_id},"o":"{fmt_units(c.open)}",'
        f'"c":"{fmt_units(c.close)}","h":"{fmt_units(c.high)}","l":"{fmt_units(c.low)}",'
        f'"v":"{fmt_units(c.volume)}","n":{c.trades},"x":{"true" if closed else "false"},'
        f'"q":"{fmt_units(c.quote_volume)}","V":"{fmt_units(c.taker_base)}",'
        f'"Q":"{fmt_units(c.taker_quote)}","B":"0"}}'
    )


def kline_event(symbol: str, event_time: int, body: str) -> str:
    """A raw-stream kline event: ``{"e":"kline","E":..,"s":..,"k":{..}}``."""
    return f'{{"e":"kline","E":{event_time},"s":"{symbol}","k":{body}}}'


def combined(stream: str, data: str) -> str:
    """Wrap a raw payload for a combined-stream connection."""
    return f'{{"stream":"{stream}","data":{data}}}'


def server_shutdown_event(event_time: int) -> str:
    """Binance's notice that the server is about to go away (sent unwrapped on every connection)."""
    return f'{{"e":"serverShutdown","E":{event_time}}}'


def rest_row(c: Candle) -> list[Any]:
    """One row of ``GET /api/v3/klines``."""
    return [
        c.open_time,
        fmt_units(c.open),
        fmt_units(c.high),
        fmt_units(c.low),
        fmt_units(c.close),
        fmt_units(c.volume),
        c.close_time,
        fmt_units(c.quote_volume),
        c.trades,
        fmt_units(c.taker_base),
        fmt_units(c.taker_quote),
        "0",
    ]


def candle_record(symbol: str, interval: str, c: Candle, closed: bool) -> dict[str, Any]:
    """A candle in TACore's normalised shape (as ``kline.history`` returns it), for ground truth."""
    return {
        "symbol": symbol,
        "interval": interval,
        "open_time": c.open_time,
        "close_time": c.close_time,
        "open": fmt_units(c.open),
        "high": fmt_units(c.high),
        "low": fmt_units(c.low),
        "close": fmt_units(c.close),
        "volume": fmt_units(c.volume),
        "quote_volume": fmt_units(c.quote_volume),
        "trades": c.trades,
        "taker_buy_base_volume": fmt_units(c.taker_base),
        "taker_buy_quote_volume": fmt_units(c.taker_quote),
        "first_trade_id": c.first_trade_id,
        "last_trade_id": c.last_trade_id,
        "closed": closed,
    }


def ws_result(result: Any, request_id: Any) -> str:
    """Reply to a live request: ``{"result": null, "id": 1}``."""
    return orjson.dumps({"result": result, "id": request_id}).decode()


def ws_error(code: int, msg: str, request_id: Any = None) -> str:
    """Error reply as Binance sends it: ``{"error": {"code": 2, "msg": ".."}, "id": 1}``."""
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": request_id}).decode()


def rest_error(code: int, msg: str) -> bytes:
    """REST error body: ``{"code": -1121, "msg": "Invalid symbol."}``."""
    return orjson.dumps({"code": code, "msg": msg})
