"""A real candle store seeded with known candles, one per test module and backend: embedded chDB, then a
ClickHouse server (``module_kline_dsn``), so every analytics assertion holds on both. (chDB: one directory
per process, so each module's store is closed before the next one opens.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from tacore.store.klines import KlineRow, KlineStore
from tests.support.candles import crypto_days, nyse_days, random_walk, rows_from_closes

#: the as-of time of every analytics test: a fixed day, so NYSE sessions (and results) never change
END_MS = int(datetime(2025, 12, 31, tzinfo=UTC).timestamp() * 1000)


@dataclass
class Seeded:
    """What was stored: per symbol the open times and closes of its closed daily candles."""

    store: KlineStore
    times: dict[str, list[int]] = field(default_factory=dict)
    closes: dict[str, list[float]] = field(default_factory=dict)
    live: dict[str, float] = field(default_factory=dict)  # close of a still-open newest candle

    def add(self, rows: list[KlineRow]) -> None:
        self.store.insert(rows)
        for row in rows:
            if row.closed:
                self.times.setdefault(row.symbol, []).append(row.open_time)
                self.closes.setdefault(row.symbol, []).append(row.close)
            else:
                self.live[row.symbol] = row.close


def seed_daily_market(seeded: Seeded, end_ms: int = END_MS) -> None:
    """US stocks on 300 NYSE sessions, crypto on 420 days (BTC with an open candle), two short histories."""
    for i, symbol in enumerate(["AAPL", "GOOGL", "MSFT", "SPY"]):
        seeded.add(rows_from_closes(symbol, "1d", nyse_days(end_ms, 300),
                                    random_walk(i, 300, start=150.0 + 40 * i, vol=0.015 + 0.003 * i, t_dof=5)))
    days = crypto_days(end_ms, 421)
    seeded.add(rows_from_closes("BTCUSDT", "1d", days, random_walk(20, 421, start=60_000.0, vol=0.035, t_dof=4),
                                last_open=True))
    seeded.add(rows_from_closes("ETHUSDT", "1d", days[:-1], random_walk(21, 420, start=3_000.0, vol=0.045)))
    seeded.add(rows_from_closes("NEWUSDT", "1d", crypto_days(end_ms, 12), random_walk(22, 12)))
    seeded.add(rows_from_closes("IPO", "1d", nyse_days(end_ms, 20), random_walk(23, 20)))


@pytest.fixture(scope="module")
def seeded(module_kline_dsn: str) -> Iterator[Seeded]:
    store = KlineStore(module_kline_dsn)
    store.open()
    data = Seeded(store)
    seed_daily_market(data)
    try:
        yield data
    finally:
        store.close()
