"""The latest-price cache: memory and the real Redis on 127.0.0.1:6379 (unique prefix, cleaned up)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tacore.store.klines import KlineRow, version_of
from tacore.store.price_cache import MemoryPriceCache, PriceCache, RedisPriceCache, open_price_cache

REDIS_URL = "redis://127.0.0.1:6379/0"


def row(interval: str, event_time: int, close: float, symbol: str = "ETHUSDT") -> KlineRow:
    return KlineRow(symbol, interval, 0, 59_999, 1.0, 2.0, 0.5, close, 10.0, 15.0, 3, 1.0, 1.5, False,
                    event_time, version_of(False, event_time))


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[PriceCache]:
    if request.param == "memory":
        yield MemoryPriceCache(60)
        return
    cache = RedisPriceCache(REDIS_URL, 60, prefix=f"test:{uuid.uuid4().hex}:")
    try:
        yield cache
    finally:
        cache.delete_all()
        cache.close()


def test_latest_price_is_the_newest_update_with_a_candle_per_interval(cache: PriceCache) -> None:
    cache.put_latest({("ETHUSDT", "1m"): row("1m", 10, 101.0), ("ETHUSDT", "1d"): row("1d", 12, 102.5)})
    snap = cache.get("ETHUSDT")
    assert snap is not None and snap.price == 102.5 and snap.event_time == 12
    assert snap.candles["1m"]["close"] == 101.0 and snap.candles["1d"]["close"] == 102.5
    cache.put_latest({("ETHUSDT", "1m"): row("1m", 20, 103.0)})
    snap = cache.get("ETHUSDT")
    assert snap is not None and snap.price == 103.0 and snap.candles["1d"]["close"] == 102.5


def test_hits_and_misses_are_counted(cache: PriceCache) -> None:
    assert cache.get("NOPEUSDT") is None
    cache.put_latest({("ETHUSDT", "1m"): row("1m", 10, 101.0)})
    assert cache.get("ETHUSDT") is not None
    assert (cache.hits, cache.misses) == (1, 1)


def test_entries_expire_after_the_ttl() -> None:
    memory = MemoryPriceCache(0.05)  # type: ignore[arg-type]
    memory.put_latest({("ETHUSDT", "1m"): row("1m", 10, 101.0)})
    time.sleep(0.1)
    assert memory.get("ETHUSDT") is None
    prefix = f"test:{uuid.uuid4().hex}:"
    cache = RedisPriceCache(REDIS_URL, 1, prefix=prefix)
    try:
        cache.put_latest({("ETHUSDT", "1m"): row("1m", 10, 101.0)})
        ttl = redis.Redis.from_url(REDIS_URL).ttl(f"{prefix}ETHUSDT")
        assert 0 < ttl <= 1
    finally:
        cache.delete_all()
        cache.close()


def test_memory_is_used_only_when_no_redis_url_is_set() -> None:
    assert open_price_cache(None, 60).kind == "memory"
    redis_cache = open_price_cache(REDIS_URL, 60)
    assert redis_cache.kind == "redis"
    redis_cache.close()


def test_the_24h_ticker_travels_with_the_price_and_many_symbols_come_in_one_call(cache: PriceCache) -> None:
    from tacore.markets.ticker import Ticker24h

    ticker = Ticker24h(20, 99.0, 5, 110.0, 90.0, 1234.5, 98765.25, 288)
    cache.put_latest({("ETHUSDT", "1m"): row("1m", 20, 101.0), ("BTCUSDT", "1m"): row("1m", 21, 7.0, "BTCUSDT")},
                     {"ETHUSDT": ticker})
    snaps = cache.get_many(["ETHUSDT", "BTCUSDT", "NOPEUSDT"])
    eth, btc = snaps["ETHUSDT"], snaps["BTCUSDT"]
    assert eth is not None and eth.ticker == ticker and eth.price == 101.0
    assert btc is not None and btc.ticker is None and snaps["NOPEUSDT"] is None
    assert (cache.hits, cache.misses) == (2, 1)
    cache.put_latest({("ETHUSDT", "1m"): row("1m", 30, 102.0)})  # a price update keeps the last figures
    again = cache.get("ETHUSDT")
    assert again is not None and again.price == 102.0 and again.ticker == ticker
    cache.forget(["ETHUSDT", "GONEUSDT"])
    assert cache.get("ETHUSDT") is None and cache.get("BTCUSDT") is not None


def test_get_many_can_read_only_the_candles_asked_for(cache: PriceCache) -> None:
    cache.put_latest({("ETHUSDT", "1m"): row("1m", 20, 101.0), ("ETHUSDT", "5m"): row("5m", 20, 101.0),
                      ("ETHUSDT", "1d"): row("1d", 21, 102.0)})
    snap = cache.get_many(["ETHUSDT", "NOPEUSDT"], ("1m", "1d"))["ETHUSDT"]
    assert snap is not None and set(snap.candles) == {"1m", "1d"} and snap.price == 102.0
    full = cache.get("ETHUSDT")
    assert full is not None and set(full.candles) == {"1m", "5m", "1d"}
