"""Candles with known answers for the scan tests, written into a real candle store.

Run as a script (``python scan_data.py chdb:///path/klines``) to seed a store from another process:
an embedded chDB directory belongs to one process, so a service test seeds it, exits, then starts
the data agent on it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from tacore.markets.calendar import calendar_named
from tacore.store.klines import KlineRow, KlineStore, version_of

DAY = 86_400_000
MINUTE = 60_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


#: The scans look from here: Wednesday 2025-01-15, half an hour after the NYSE close. (A service test
#: seeds the same candles ending now instead, to send the design document's payload as written.)
AS_OF = ms("2025-01-15T21:30:00")


def series(symbol: str, interval_ms: int, closes: Sequence[float], *, last_open: int,
           highs: Sequence[float] | None = None, lows: Sequence[float] | None = None,
           volumes: Sequence[float] | None = None,
           quote_volumes: Sequence[float] | None = None, last_event: int | None = None,
           interval: str = "1d") -> list[KlineRow]:
    """Consecutive candles ending with one opening at ``last_open``; every one closed but the last, which is
    still running (updated at ``last_event``), as live candles are."""
    n = len(closes)
    c = np.asarray(closes, dtype=float)
    h = np.asarray(highs if highs is not None else c + 1.0, dtype=float)
    lo = np.asarray(lows if lows is not None else c - 1.0, dtype=float)
    v = np.asarray(volumes if volumes is not None else np.full(n, 10.0), dtype=float)
    q = np.asarray(quote_volumes if quote_volumes is not None else v * c, dtype=float)
    rows = []
    for i in range(n):
        open_time = last_open - (n - 1 - i) * interval_ms
        close_time = open_time + interval_ms - 1
        closed = i < n - 1
        event = close_time if closed else (last_event if last_event is not None else open_time + 1)
        opened = float(c[i - 1]) if i else float(c[0])
        rows.append(KlineRow(symbol, interval, open_time, close_time, opened, float(h[i]), float(lo[i]), float(c[i]),
                             float(v[i]), float(q[i]), 10, float(v[i]) / 2, float(q[i]) / 2, closed, event,
                             version_of(closed, event)))
    return rows


def random_walk(seed: int, n: int, start: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """closes, highs, lows, volumes of a seeded random walk."""
    rng = np.random.default_rng(seed)
    closes = start * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    highs = closes * (1 + rng.uniform(0, 0.03, n))
    lows = closes * (1 - rng.uniform(0, 0.03, n))
    return closes, highs, lows, rng.uniform(100, 1000, n)


def crypto_rows(as_of: int = AS_OF) -> list[KlineRow]:
    today = as_of - as_of % DAY
    rows: list[KlineRow] = []
    day = {"last_open": today, "last_event": as_of - 30_000}
    # AAA rises by 1 a day to 399 (RSI 100), volume 10 a day then 30 today (relative volume 3)
    rows += series("AAAUSDT", DAY, 100.0 + np.arange(300), volumes=[10.0] * 299 + [30.0], **day)
    rows += series("BBBUSDT", DAY, 400.0 - np.arange(300), **day)  # falls to 101 (RSI 0)
    c, h, lo, v = random_walk(7, 300, 50.0)
    rows += series("CCCUSDT", DAY, c, highs=h, lows=lo, volumes=v, **day)
    rows += series("DDDUSDT", DAY, 50.0 + np.arange(10), **day)  # too young for RSI 14 or SMA 20
    hour_old = {"last_open": today, "last_event": as_of - 3_600_000}
    rows += series("EEEUSDT", DAY, [100.0] * 59 + [120.0], **hour_old)  # crosses above its SMA 20 today
    rows += series("FFFUSDT", DAY, [100.0] * 59 + [80.0], **hour_old)  # crosses below it
    c, h, lo, v = random_walk(11, 40, 20.0)
    rows += series("SOLUSDT", DAY, c, highs=h, lows=lo, volumes=v, **day)  # listed by CRYPTO, 40 candles
    rows += series("OLDUSDT", DAY, [5.0] * 30, last_open=today - 40 * DAY)  # stopped 40 days ago
    # the last day of minute candles: AAA trades 1,000 USDT a minute, BBB 500, CCC has only 1,000 minutes
    minute = {"last_open": as_of - as_of % MINUTE - MINUTE, "interval": "1m"}
    rows += series("AAAUSDT", MINUTE, [399.0] * 1440, quote_volumes=[1000.0] * 1440, **minute)
    rows += series("BBBUSDT", MINUTE, [101.0] * 1440, quote_volumes=[500.0] * 1440, **minute)
    rows += series("CCCUSDT", MINUTE, [c[-1]] * 1000, quote_volumes=[1e6] * 1000, **minute)
    return rows


def session_minutes(as_of: int, sessions: int = 3) -> list[int]:
    """Open times of every minute of the last ``sessions`` NYSE sessions before ``as_of`` (the running one
    up to it): the last day's window (a regular session's trading time) always holds 390 of them."""
    calendar = calendar_named("XNYS")
    recent = [s for s in calendar.sessions(as_of - 15 * DAY, as_of) if s[0] < as_of][-sessions:]
    return [t for start, stop in recent for t in range(start, min(stop, as_of), MINUTE)]


def us_rows(as_of: int = AS_OF) -> list[KlineRow]:
    """Three listed stocks and one unlisted, each with a year of daily candles and the minutes of the last
    NYSE sessions, each trading a fixed value a minute (at ``AS_OF``, the last session closed half an hour
    before)."""
    today = as_of - as_of % DAY
    rows: list[KlineRow] = []
    times = session_minutes(as_of)
    for symbol, price, per_minute in (("AAPL", 230.0, 10_000.0), ("MSFT", 610.0, 50_000.0), ("TSLA", 400.0, 100.0),
                                      ("ZZZZ", 12.0, 5_000.0)):
        closes = price * (1 + 0.001 * np.sin(np.arange(252)))
        rows += series(symbol, DAY, closes, last_open=today, last_event=times[-1] + MINUTE)
        last = float(closes[-1])
        for t in times:
            event = min(t + MINUTE - 1, as_of)
            closed = event == t + MINUTE - 1
            rows.append(KlineRow(symbol, "1m", t, t + MINUTE - 1, last, last + 1, last - 1, last, per_minute / last,
                                 per_minute, 10, 0.0, 0.0, closed, event, version_of(closed, event)))
    return rows


def superseded_rows(as_of: int = AS_OF) -> list[KlineRow]:
    """Versions the store must never serve: an older open update of AAA's last candle, an open update of
    a closed candle arriving after it, and a candle opening after ``as_of``."""
    today = as_of - as_of % DAY
    stale = series("AAAUSDT", DAY, [999.0], last_open=today, last_event=as_of - 60_000)
    reopened = series("BBBUSDT", DAY, [1.0, 1.0], last_open=today - DAY, last_event=as_of)[:1]
    reopened = [r._replace(closed=False, event_time=as_of, version=version_of(False, as_of)) for r in reopened]
    future = series("AAAUSDT", DAY, [5000.0], last_open=today + DAY)
    return [*stale, *reopened, *future]


def seed(dsn: str, as_of: int = AS_OF) -> int:
    store = KlineStore(dsn)
    store.open()
    rows = crypto_rows(as_of) + us_rows(as_of)
    store.insert(rows)
    store.insert(superseded_rows(as_of))
    store.close()
    return len(rows)


if __name__ == "__main__":
    print(seed(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else AS_OF))
