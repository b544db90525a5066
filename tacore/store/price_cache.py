"""The latest candle of each (symbol, interval) and the last price of each symbol, with a TTL.

In Redis (``REDIS_URL``) one hash per symbol, ``<prefix><SYMBOL>``: ``price`` and ``event_time`` of the
newest update, and one JSON candle per interval; the key expires ``price_ttl_s`` after its last update,
so a symbol nobody feeds any more disappears instead of serving a stale price. Without ``REDIS_URL`` the
same thing lives in this process's memory. The writer calls ``put_latest`` in batches (a few times a
second, never per message), with the symbol's rolling 24 h ticker figures when they changed (field
``ticker_24h``), so a reader needs nothing else; readers call ``get`` / ``get_many`` (one round trip for
any number of symbols), which count hits and misses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from tacore.markets.ticker import Ticker24h
from tacore.store.klines import KlineRow, candle_dict

DEFAULT_PREFIX = "tacore:price:"
TICKER_FIELD = "ticker_24h"
_TICKER_KEY = TICKER_FIELD.encode()


@dataclass(slots=True)
class PriceSnapshot:
    """What the cache knows about one symbol."""

    symbol: str
    price: float
    event_time: int
    candles: dict[str, dict[str, Any]] = field(default_factory=dict)  # interval -> candle
    ticker: Ticker24h | None = None  # rolling 24 h figures (None until the ticker interval has data)


class PriceCache(Protocol):
    kind: str
    hits: int
    misses: int

    def put_latest(self, rows: Mapping[tuple[str, str], KlineRow],
                   tickers: Mapping[str, Ticker24h] | None = None) -> None: ...
    def get(self, symbol: str) -> PriceSnapshot | None: ...
    def get_many(self, symbols: Sequence[str],
                 intervals: Sequence[str] | None = None) -> dict[str, PriceSnapshot | None]:
        """Several symbols at once; with ``intervals``, only those candles (less to read and parse)."""
        ...

    def forget(self, symbols: Iterable[str]) -> None: ...
    def ping(self) -> None:
        """Raise when the cache cannot be reached."""
        ...

    def close(self) -> None: ...


def _newest_per_symbol(rows: Mapping[tuple[str, str], KlineRow]) -> dict[str, list[KlineRow]]:
    """Rows grouped by symbol, the newest (by event time) first."""
    grouped: dict[str, list[KlineRow]] = {}
    for row in rows.values():
        grouped.setdefault(row.symbol, []).append(row)
    for group in grouped.values():
        group.sort(key=lambda r: r.event_time, reverse=True)
    return grouped


class MemoryPriceCache:
    """In-process cache used when REDIS_URL is unset; honours the same TTL."""

    kind = "memory"

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, PriceSnapshot]] = {}

    def put_latest(self, rows: Mapping[tuple[str, str], KlineRow],
                   tickers: Mapping[str, Ticker24h] | None = None) -> None:
        expires = time.monotonic() + self.ttl_s
        with self._lock:
            for symbol, group in _newest_per_symbol(rows).items():
                entry = self._entries.get(symbol)
                snap = entry[1] if entry else PriceSnapshot(symbol, group[0].close, group[0].event_time)
                if group[0].event_time >= snap.event_time:
                    snap.price, snap.event_time = group[0].close, group[0].event_time
                for row in group:
                    snap.candles[row.interval] = candle_dict(row)
                if tickers is not None and symbol in tickers:
                    snap.ticker = tickers[symbol]
                self._entries[symbol] = (expires, snap)

    def get(self, symbol: str) -> PriceSnapshot | None:
        with self._lock:
            return self._get(symbol, time.monotonic())

    def get_many(self, symbols: Sequence[str],
                 intervals: Sequence[str] | None = None) -> dict[str, PriceSnapshot | None]:
        now = time.monotonic()
        with self._lock:
            return {symbol: self._get(symbol, now, intervals) for symbol in symbols}

    def _get(self, symbol: str, now: float, intervals: Sequence[str] | None = None) -> PriceSnapshot | None:
        entry = self._entries.get(symbol)
        if entry is None or entry[0] < now:
            self._entries.pop(symbol, None)
            self.misses += 1
            return None
        self.hits += 1
        snap = entry[1]
        candles = dict(snap.candles) if intervals is None else \
            {i: snap.candles[i] for i in intervals if i in snap.candles}
        return PriceSnapshot(snap.symbol, snap.price, snap.event_time, candles, snap.ticker)

    def forget(self, symbols: Iterable[str]) -> None:
        with self._lock:
            for symbol in symbols:
                self._entries.pop(symbol, None)

    def ping(self) -> None:
        """Memory is always there."""

    def close(self) -> None:
        with self._lock:
            self._entries.clear()


class RedisPriceCache:
    """Redis hashes with a TTL; one pipeline round trip per batch."""

    kind = "redis"

    def __init__(self, url: str, ttl_s: int, *, prefix: str = DEFAULT_PREFIX) -> None:
        import redis

        self.ttl_s = ttl_s
        self.prefix = prefix
        self.hits = 0
        self.misses = 0
        # well under a request's deadline: a read that waits longer is answered from the candle store
        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def key(self, symbol: str) -> str:
        return f"{self.prefix}{symbol}"

    def put_latest(self, rows: Mapping[tuple[str, str], KlineRow],
                   tickers: Mapping[str, Ticker24h] | None = None) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for symbol, group in _newest_per_symbol(rows).items():
            mapping: dict[str, bytes | str | int | float] = {
                row.interval: orjson.dumps(candle_dict(row)) for row in group
            }
            mapping["price"] = repr(group[0].close)
            mapping["event_time"] = group[0].event_time
            if tickers is not None and symbol in tickers:
                mapping[TICKER_FIELD] = orjson.dumps(tickers[symbol].to_json())
            key = self.key(symbol)
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(key, self.ttl_s)
        pipe.execute()

    def get(self, symbol: str) -> PriceSnapshot | None:
        raw: dict[bytes, bytes] = self._redis.hgetall(self.key(symbol))  # type: ignore[assignment]
        return self._snapshot(symbol, raw)

    def get_many(self, symbols: Sequence[str],
                 intervals: Sequence[str] | None = None) -> dict[str, PriceSnapshot | None]:
        """One round trip for every symbol: a pipeline of HGETALLs, or of HMGETs of the fields asked for."""
        pipe = self._redis.pipeline(transaction=False)
        if intervals is None:
            for symbol in symbols:
                pipe.hgetall(self.key(symbol))
            raws = pipe.execute()
        else:
            fields = [b"price", b"event_time", _TICKER_KEY, *(i.encode() for i in intervals)]
            for symbol in symbols:
                pipe.hmget(self.key(symbol), fields)
            raws = [{f: v for f, v in zip(fields, values, strict=True) if v is not None} for values in pipe.execute()]
        return {symbol: self._snapshot(symbol, raw) for symbol, raw in zip(symbols, raws, strict=True)}

    def _snapshot(self, symbol: str, raw: dict[bytes, bytes]) -> PriceSnapshot | None:
        if not raw or b"price" not in raw:
            self.misses += 1
            return None
        self.hits += 1
        snap = PriceSnapshot(symbol, float(raw[b"price"]), int(raw[b"event_time"]))
        for name, value in raw.items():
            if name == _TICKER_KEY:
                snap.ticker = Ticker24h.from_json(orjson.loads(value))
            elif name not in (b"price", b"event_time"):
                snap.candles[name.decode()] = orjson.loads(value)
        return snap

    def forget(self, symbols: Iterable[str]) -> None:
        keys = [self.key(symbol) for symbol in symbols]
        if keys:
            self._redis.delete(*keys)

    def ping(self) -> None:
        self._redis.ping()

    def delete_all(self) -> int:
        """Remove every key under the prefix (tests use a unique prefix and call this to clean up)."""
        keys = list(self._redis.scan_iter(match=f"{self.prefix}*", count=500))
        return int(self._redis.delete(*keys)) if keys else 0

    def close(self) -> None:
        self._redis.close()


def open_price_cache(redis_url: str | None, ttl_s: int, *, prefix: str = DEFAULT_PREFIX) -> PriceCache:
    """Redis when configured, memory otherwise (stated in ``kind``, never a silent fallback)."""
    if redis_url:
        return RedisPriceCache(redis_url, ttl_s, prefix=prefix)
    return MemoryPriceCache(ttl_s)
