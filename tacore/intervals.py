"""The kline intervals TACore keeps (the seed's seven), with their length in milliseconds.

One definition for the data agent, the broker methods and the exchange simulator. Each interval
nests exactly in the next, so a candle of one is always the aggregate of whole candles of the other.
"""

from __future__ import annotations

from typing import Any

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
INTERVALS: tuple[str, ...] = tuple(INTERVAL_MS)

#: Times are stored and queried as Int64 epoch ms: an input time past this would wrap around in a query,
#: so every method that takes one bounds it here (INVALID_PARAMS above it).
MAX_TIME_MS = 2**63 - 1


def check_interval(value: Any) -> str:
    """An interval name, else ValueError (-> INVALID_PARAMS naming the field in a params model)."""
    if value not in INTERVALS:
        raise ValueError(f"invalid interval {value!r}: one of {', '.join(INTERVALS)}")
    return str(value)
