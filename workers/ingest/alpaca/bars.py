"""Alpaca bar objects (REST and stream) -> TACore's candle rows.

A bar ``{"t", "o", "h", "l", "c", "v", "n", "vw"}`` becomes a ``KlineRow`` like a Binance kline:
prices and volume as floats, ``trades`` = ``n``, ``quote_volume`` = volume x VWAP (the dollar value
traded, what ``scan.market``'s ``min_volume`` measures), no taker split (equities have none: 0).
Open times are TACore's: the bar's time for ``1m``..``4h``, UTC midnight of the session's date for
``1d`` (Alpaca stamps daily bars with New York midnight, 04:00Z or 05:00Z of that date).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tacore.intervals import INTERVAL_MS
from tacore.store.klines import KlineRow, version_of

_FRACTION_RE = re.compile(r"\.(\d+)")


class BarError(ValueError):
    """A bar that cannot be read."""


def parse_time_ms(text: str) -> int:
    """Epoch ms of an RFC-3339 time (``Z`` or an offset, up to nanoseconds)."""
    fraction = _FRACTION_RE.search(text)
    millis = 0
    if fraction is not None:
        millis = int(fraction.group(1)[:3].ljust(3, "0"))
        text = text[:fraction.start()] + text[fraction.end():]
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BarError(f"bad time {text!r}") from None
    if stamp.tzinfo is None:
        raise BarError(f"time without a zone: {text!r}")
    return int(stamp.timestamp()) * 1000 + millis


def open_time_of(bar_time_ms: int, interval: str) -> int:
    """TACore's open time for a bar stamped ``bar_time_ms`` (New York midnight -> UTC midnight for 1d)."""
    return bar_time_ms - bar_time_ms % INTERVAL_MS[interval]


def bar_row(symbol: str, interval: str, bar: Mapping[str, Any], *, closed: bool, event_time: int) -> KlineRow:
    """One bar as a candle row, versioned at ``event_time`` (closed rows outrank open ones)."""
    try:
        open_time = open_time_of(parse_time_ms(str(bar["t"])), interval)
        volume = float(bar["v"])
        return KlineRow(
            symbol, interval, open_time, open_time + INTERVAL_MS[interval] - 1,
            float(bar["o"]), float(bar["h"]), float(bar["l"]), float(bar["c"]), volume,
            volume * float(bar.get("vw", 0.0)), int(bar.get("n", 0)), 0.0, 0.0,
            closed, event_time, version_of(closed, event_time),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BarError(f"malformed bar for {symbol}: {exc!r}") from None
