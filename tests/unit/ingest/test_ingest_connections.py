"""How streams are spread over connections, and how outgoing requests are packed into frames."""

from __future__ import annotations

from typing import Any

from tacore.intervals import INTERVALS
from workers.ingest.connections import ConnectionConfig, ConnectionPool, ExchangeConnection, _merge
from workers.ingest.limits import attempt_limiter
from workers.ingest.normalise import stream_name


class Listener:
    def on_data(self, conn: ExchangeConnection, stream: str, data: dict[str, Any]) -> None: ...
    def on_subscribed(self, conn: ExchangeConnection, names: list[str]) -> None: ...
    def on_disconnected(self, conn: ExchangeConnection, reason: str) -> None: ...


def names(symbols: int) -> list[str]:
    return [stream_name(f"S{n:03d}USDT", i) for n in range(symbols) for i in INTERVALS]


async def test_100_symbols_x_7_intervals_take_2_balanced_connections() -> None:
    config = ConnectionConfig(ws_url="ws://127.0.0.1:9", backoff_initial_s=60)  # nothing listens: no traffic
    pool = ConnectionPool(config, Listener(), attempt_limiter())
    try:
        pool.add(names(100))
        assert len(pool.connections) == 2
        assert sorted(len(c.streams) for c in pool.connections.values()) == [350, 350]
        pool.add(names(100))  # idempotent
        assert sum(len(c.streams) for c in pool.connections.values()) == 700
        assert all(pool.where[n] in pool.connections.values() for n in names(100))
    finally:
        await pool.close()


async def test_removing_every_stream_of_a_connection_hands_it_back_for_closing() -> None:
    config = ConnectionConfig(ws_url="ws://127.0.0.1:9", max_streams=7, backoff_initial_s=60)
    pool = ConnectionPool(config, Listener(), attempt_limiter())
    try:
        pool.add(names(2))
        assert len(pool.connections) == 2
        first = [n for n, c in pool.where.items() if c.conn_id == 1]
        emptied = pool.remove(first)
        assert [c.conn_id for c in emptied] == [1] and list(pool.connections) == [2]
        for conn in emptied:
            await conn.close()
        pool.add(names(3))  # a new stream goes where there is room, else to a new connection
        assert sum(len(c.streams) for c in pool.connections.values()) == 21
        assert all(len(c.streams) <= 7 for c in pool.connections.values())
    finally:
        await pool.close()


def test_adjacent_requests_of_one_method_share_frames() -> None:
    merged = _merge([("SUBSCRIBE", ["a"]), ("SUBSCRIBE", ["b", "c"]), ("UNSUBSCRIBE", ["a"]), ("SUBSCRIBE", ["d"])])
    assert merged == [("SUBSCRIBE", ["a", "b", "c"]), ("UNSUBSCRIBE", ["a"]), ("SUBSCRIBE", ["d"])]
