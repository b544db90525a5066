"""Storage outages: the agent keeps buffering up to its bound, reports the outage, counts drops, and
catches up when storage returns, still with every closed candle stored exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ingest_harness import Agent, completeness, sim_now, streams_of

from tacore.exchange_sim.server import ExchangeSimulator
from tacore.settings import Settings
from tacore.store.klines import KlineRow, KlineStore, StorageError
from tests.support.ports import free_port
from tests.support.processes import wait_until
from workers.ingest.agent import DataAgent
from workers.ingest.config import IngestConfig


class SwitchableStore(KlineStore):
    """The real chDB store, whose INSERTs fail while ``down`` (as when a ClickHouse server is away)."""

    down = False

    def insert(self, rows: Sequence[KlineRow]) -> None:
        if self.down:
            raise StorageError("clickhouse store: ConnectionRefusedError: [Errno 111] Connection refused")
        super().insert(rows)


class InProcessAgent:
    """Enough of the harness's ``Agent`` for ``completeness``: history straight from the store."""

    def __init__(self, agent: DataAgent) -> None:
        self.agent = agent

    def history(self, symbol: str, interval: str, **params: Any) -> list[dict[str, Any]]:
        return self.agent.store.history(symbol, interval, start=params.get("start"), limit=1000)


async def test_outage_buffers_reports_drops_and_catches_up_without_losing_a_closed_candle(
        sim: ExchangeSimulator, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, exchange_ws_url=sim.ws_url, exchange_rest_url=sim.rest_url,
                        events_port=free_port(), zmq_frontend_port=free_port(), zmq_backend_port=free_port(),
                        recorder_port=free_port(), api_port=free_port(), data_agent_symbols=["BTCUSDT", "ETHUSDT"],
                        history_depth=0)
    store = SwitchableStore(settings.clickhouse_dsn)
    # a bound small enough that a few seconds of outage overflow it even after compaction
    config = IngestConfig(stall_s=0.6, flush_ms=100, buffer_rows=60, batch_rows=50, backoff_initial_s=0.2)
    agent = DataAgent(settings, config, store=store)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.serve(stop, worker=False))
    streams = streams_of(["BTCUSDT", "ETHUSDT"], ("1m", "5m", "15m"))

    async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    try:
        await until(lambda: agent.writer.rows_written > 50, 10, "rows stored")
        fault = sim_now(sim)
        store.down = True
        await until(lambda: not agent.writer.storage_up, 5, "the outage to be noticed")
        status = await asyncio.to_thread(agent.status)
        assert status["storage_state"] == "down" and status["status"] == "degraded"
        assert "Connection refused" in status["storage"]["last_error"]
        await until(lambda: agent.writer.dropped_rows > 0, 10, "the bound to be reached")
        status = await asyncio.to_thread(agent.status)
        assert status["buffered_rows"] <= config.buffer_rows and status["dropped_rows"] > 0
        assert status["storage"]["compacted_rows"] > 0, "compaction comes before dropping"
        snap = (await asyncio.to_thread(agent.upkeep.market.cached_snapshots, ["BTCUSDT"]))["BTCUSDT"]
        assert snap is not None, "the latest prices keep flowing while storage is down"
        written = agent.writer.rows_written
        await asyncio.sleep(1.0)
        store.down = False
        await until(lambda: agent.writer.storage_up and agent.writer.rows_written > written, 5, "the catch-up")
        status = await asyncio.to_thread(agent.status)
        assert status["storage_state"] == "up"

        problems: list[str] = ["not checked"]

        def complete() -> bool:
            nonlocal problems
            problems = completeness(InProcessAgent(agent), sim, streams, fault)  # type: ignore[arg-type]
            return not problems

        try:
            await asyncio.to_thread(wait_until, complete, 20, "complete candles", 0.3)
        except AssertionError:
            raise AssertionError(f"incomplete after the outage: {problems[:10]}") from None
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def test_unreachable_clickhouse_server_is_reported_and_history_is_unavailable(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, ["BTCUSDT"], CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}")
    agent.wait_flowing(7)
    # the status word comes from the broker's service-wide health once it has one: a report interval behind
    status = wait_until(lambda: (s := agent.status())["storage_state"] == "down" and s["status"] == "degraded" and s,
                        10, "storage down, status degraded")
    assert status["buffered_rows"] > 0 and status["rows_written"] == 0
    reply = agent.request("kline.history", {"symbol": "BTCUSDT", "interval": "1m"})
    assert reply["status"] == "error" and reply["error"]["code"] == "UNAVAILABLE"
    assert reply["error"]["retryable"] is True
    market = agent.call("get.market_data", {"symbols": ["BTCUSDT"]})["symbols"]["BTCUSDT"]
    assert market["status"] == "ok" and market["source"] == "cache", "prices are served from the cache"
