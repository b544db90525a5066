"""Binance kline payloads (WebSocket and REST) -> one row shape for storage, events and replies.

Prices and volumes are **floats** (IEEE-754 doubles) everywhere in TACore's market data: the exchange
sends decimal strings, we parse them once with ``float()``, store them as ClickHouse ``Float64`` and
return them as JSON numbers. A double holds 15-17 significant digits, more than any Binance price or
quantity carries, so ``float(rest_value) == stored_value`` holds exactly for every candle. Times are
integer epoch milliseconds.

The hot path builds a ``KlineRow`` (a named tuple in storage column order) per message; the public
candle dict (``tacore.store.klines.candle_dict``) is built only where one leaves the process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tacore.intervals import INTERVAL_MS
from tacore.store.klines import CLOSED_VERSION, KlineRow, version_of

#: any market's symbol: Binance's (``BTCUSDT``) or a US ticker (``AAPL``, ``V``, ``BRK.B``); which market
#: a symbol belongs to is ``tacore.markets``' call
SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}([.][A-Z]{1,2})?$")

class PayloadError(ValueError):
    """A message that claims to be a kline but cannot be read as one."""


def stream_name(symbol: str, interval: str) -> str:
    """Exchange stream name, e.g. ``btcusdt@kline_1m``."""
    return f"{symbol.lower()}@kline_{interval}"


def parse_stream_name(name: str) -> tuple[str, str]:
    """``btcusdt@kline_1m`` -> ``("BTCUSDT", "1m")``; raises PayloadError for anything else."""
    symbol, sep, rest = name.partition("@kline_")
    if not sep or rest not in INTERVAL_MS or not symbol:
        raise PayloadError(f"not a kline stream name: {name!r}")
    return symbol.upper(), rest


def kline_row(payload: Mapping[str, Any]) -> KlineRow:
    """A WebSocket ``kline`` event (``{"e": "kline", "E", "s", "k": {...}}``) -> row."""
    try:
        k = payload["k"]
        closed = bool(k["x"])
        event_time = int(payload["E"])
        return KlineRow(
            k["s"], k["i"], int(k["t"]), int(k["T"]),
            float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"]), float(k["q"]),
            int(k["n"]), float(k["V"]), float(k["Q"]),
            closed, event_time, (CLOSED_VERSION if closed else 0) + event_time,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"malformed kline payload: {exc!r}") from None


def rest_row(symbol: str, interval: str, item: Sequence[Any], *, closed: bool) -> KlineRow:
    """One row of ``GET /api/v3/klines`` (``[t, o, h, l, c, v, T, q, n, V, Q, ignore]``) -> row.

    REST rows carry no event time; a closed one is versioned at its close time, which any live
    closed version of the same candle (sent after the close) matches or outranks harmlessly.
    """
    try:
        close_time = int(item[6])
        return KlineRow(
            symbol, interval, int(item[0]), close_time,
            float(item[1]), float(item[2]), float(item[3]), float(item[4]), float(item[5]), float(item[7]),
            int(item[8]), float(item[9]), float(item[10]),
            closed, close_time, version_of(closed, close_time),
        )
    except (IndexError, TypeError, ValueError) as exc:
        raise PayloadError(f"malformed REST kline row: {exc!r}") from None
