"""Kline intervals, symbol validity and stream-name parsing, as Binance defines them.

Kept apart from candle generation so the WS server, the REST endpoint and the tests share one
definition of what a valid symbol, interval and stream name is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tacore.intervals import INTERVAL_MS as INTERVAL_MS
from tacore.intervals import INTERVALS as INTERVALS

MINUTE_MS = 60_000

# The simulator produces data for TACore's intervals (INTERVAL_MS, INTERVALS, re-exported here).
CHILD_INTERVAL: dict[str, str] = {
    "5m": "1m",
    "15m": "5m",
    "30m": "15m",
    "1h": "30m",
    "4h": "1h",
    "1d": "4h",
}

# Every interval Binance accepts; the ones outside INTERVALS are valid but carry no data here.
BINANCE_INTERVALS: frozenset[str] = frozenset(
    {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"}
)

QUOTE_ASSETS: tuple[str, ...] = ("FDUSD", "USDT", "BTC", "ETH", "BNB")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{5,20}$")
# Binance stream names: lowercase symbol, '@', a stream type (kline_1m, trade, depth20@100ms...).
_STREAM_RE = re.compile(r"^[a-z0-9]{2,20}@[A-Za-z0-9_@]{1,40}$|^![A-Za-z0-9_@]{1,40}$")
_KLINE_RE = re.compile(r"^([a-z0-9]{2,20})@kline_([0-9]{1,2}[smhdwM])$")


def open_time_of(ts_ms: int, interval: str) -> int:
    """Open time of the candle of ``interval`` that contains ``ts_ms`` (UTC-aligned, like Binance)."""
    step = INTERVAL_MS[interval]
    return ts_ms - ts_ms % step


def close_time_of(open_time_ms: int, interval: str) -> int:
    """Binance's close time: the last millisecond inside the candle."""
    return open_time_ms + INTERVAL_MS[interval] - 1


def symbol_is_listed(symbol: str, whitelist: frozenset[str] | None) -> bool:
    """Whether the simulated exchange lists ``symbol`` (upper case, as in REST)."""
    if whitelist is not None:
        return symbol in whitelist
    return bool(_SYMBOL_RE.match(symbol)) and symbol.endswith(QUOTE_ASSETS)


@dataclass(frozen=True, slots=True)
class StreamName:
    """A parsed stream name; ``interval`` is set only for kline streams the simulator can feed."""

    name: str
    symbol: str | None
    interval: str | None


def parse_stream(name: str) -> StreamName | None:
    """Parse a stream name; None when Binance would answer 'Invalid request: invalid stream'.

    A well-formed name for an unlisted symbol or another stream type is accepted and simply never
    carries data, as on Binance.
    """
    if not _STREAM_RE.match(name):
        return None
    match = _KLINE_RE.match(name)
    if match is None:
        if "@kline_" in name:
            return None
        return StreamName(name, None, None)
    interval = match.group(2)
    if interval not in BINANCE_INTERVALS:
        return None
    return StreamName(name, match.group(1).upper(), interval if interval in INTERVAL_MS else None)


def kline_stream(symbol: str, interval: str) -> str:
    """The Binance stream name for a symbol's klines."""
    return f"{symbol.lower()}@kline_{interval}"
