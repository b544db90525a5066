"""Alpaca's wire formats: bar objects (REST and stream), control and error messages, RFC-3339 times.

Numbers print as Alpaca's Go encoder prints them: a whole price is an integer (``"c": 169``), other
prices have at most two decimals here (a one-cent tick), VWAPs up to six; volumes and trade counts
are integers. Times are RFC-3339 in UTC with a ``Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from tacore.exchange_sim.alpaca.bars import BarColumns, vwap_micro

#: channel lists of a ``subscription`` message, in Alpaca's order
CHANNELS: tuple[str, ...] = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds",
                             "corrections", "cancelErrors")
#: channels a client names in subscribe/unsubscribe (corrections and cancelErrors follow trades)
CLIENT_CHANNELS: tuple[str, ...] = CHANNELS[:7]


def rfc3339(ms: int) -> str:
    """``2024-07-01T13:30:00Z`` (second precision unless there are milliseconds)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    if ms % 1000:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(ms: int) -> str:
    """``2024-07-01T13:30:00.000000000Z``: the timestamp inside a page token."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}000000Z"


def _dollars(cents: int) -> int | float:
    return cents // 100 if cents % 100 == 0 else cents / 100


def _micro(micro: int) -> int | float:
    return micro // 1_000_000 if micro % 1_000_000 == 0 else micro / 1_000_000


def bar_dicts(cols: BarColumns) -> list[dict[str, Any]]:
    """REST bar objects ``{"t","o","h","l","c","v","n","vw"}``."""
    out = []
    for t, o, h, lo, c, v, n, value in zip(cols.start.tolist(), cols.open.tolist(), cols.high.tolist(),
                                           cols.low.tolist(), cols.close.tolist(), cols.volume.tolist(),
                                           cols.trades.tolist(), list(cols.value), strict=True):
        out.append({"t": rfc3339(t), "o": _dollars(o), "h": _dollars(h), "l": _dollars(lo), "c": _dollars(c),
                    "v": v, "n": n, "vw": _micro(vwap_micro(int(value), v))})
    return out


def stream_bars(kind: str, symbol: str, cols: BarColumns) -> list[dict[str, Any]]:
    """Stream data points ``{"T": "b"|"d"|"u", "S", "o","h","l","c","v","t","n","vw"}``."""
    out = []
    for bar in bar_dicts(cols):
        out.append({"T": kind, "S": symbol, "o": bar["o"], "h": bar["h"], "l": bar["l"], "c": bar["c"],
                    "v": bar["v"], "t": bar["t"], "n": bar["n"], "vw": bar["vw"]})
    return out


def control(kind: str, msg: str) -> str:
    """``[{"T":"success","msg":"connected"}]``: control messages always come alone in their array."""
    return orjson.dumps([{"T": kind, "msg": msg}]).decode()


def stream_error(code: int, msg: str) -> str:
    """``[{"T":"error","code":402,"msg":"auth failed"}]``."""
    return orjson.dumps([{"T": "error", "code": code, "msg": msg}]).decode()


def subscription(channels: dict[str, list[str]]) -> str:
    """The full current subscription, every channel listed."""
    body: dict[str, Any] = {"T": "subscription"}
    for name in CHANNELS:
        body[name] = list(channels.get(name, []))
    return orjson.dumps([body]).decode()


def rest_error(code: int, message: str) -> bytes:
    """``{"code": 40010001, "message": "invalid timeframe"}``."""
    return orjson.dumps({"code": code, "message": message})
