"""A store written under a clock ahead of the source's (the old 60x demo) is reported and never served as
live: moved aside at start (kline.status, health.check), and refused when the source's clock goes back
under a running agent. Real simulators, a real data agent and pool worker, real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from ingest_harness import Agent, Broker, sim_now

from tacore.exchange_sim.server import ExchangeSimulator
from tests.support.processes import TACoreProcess, wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"
DAY_MS = 86_400_000
TOLERANCE_MS = 60_000


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def pool_worker(broker: Broker, data_dir: Path, workdir: Path) -> TACoreProcess:
    """A ``tacore worker`` beside the agent (same data directory): it answers health.check."""
    worker = TACoreProcess(workdir, ["worker", "--count", "1", "--prefix", f"w{uuid.uuid4().hex[:4]}-"],
                           env={"DATA_DIR": str(data_dir)}, ports=broker.ports).start()
    wait_until(lambda: any(w["worker_id"].startswith(worker.args[-1]) and w["state"] != "dead"
                           for w in broker.process.status()["workers"]), 20, "the pool worker")
    return worker


def never_ahead(agent: Agent, sim: ExchangeSimulator, seconds: float) -> dict[str, Any]:
    """get.market_data for a while: never an event later than the source's clock."""
    deadline = time.monotonic() + seconds
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        entry = agent.call("get.market_data", {"symbols": ["BTCUSDT"]})["symbols"]["BTCUSDT"]
        if entry["status"] == "ok":
            assert entry["event_time"] <= sim_now(sim) + TOLERANCE_MS, ("served from the future", entry)
        time.sleep(0.1)
    return entry


def detailed_health(agent: Agent, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """``health.check {"detailed": true}`` once it shows what ``wanted`` looks for: the states are the broker's,
    assessed from the agent's reports once a heartbeat, so a just-started worker may carry an older set."""
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        nonlocal last
        last = agent.call("health.check", {"detailed": True})
        return last if wanted(last) and "store_clock" in last["dependencies"].get("data_agent", {}) else None

    try:
        return wait_until(check, 10, "the health states", interval=0.2)
    except AssertionError:
        raise AssertionError(f"health.check said {last}") from None


def test_candles_from_a_faster_clock_are_moved_aside_at_start_and_reported(
        sim_factory: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent], broker: Broker,
        tmp_path: Path, redis_prefix: str) -> None:
    data_dir = tmp_path / "shared-data"
    env = {"REDIS_URL": REDIS_URL, "TACORE_INGEST_CACHE_PREFIX": redis_prefix, "HISTORY_DEPTH": "5"}
    ahead_sim = sim_factory(start_time_ms=int(time.time() * 1000) + 3 * DAY_MS)  # where a 60x clock got to
    old = agent_factory(ahead_sim, ["BTCUSDT"], data_dir=data_dir, **env)
    old.wait_flowing(7)
    client = redis.Redis.from_url(REDIS_URL)
    wait_until(lambda: client.hget(f"{redis_prefix}BTCUSDT", "event_time"), 5, "the price in Redis")
    old.stop()
    stale = int(client.hget(f"{redis_prefix}BTCUSDT", "event_time") or 0)
    assert stale > time.time() * 1000 + 2 * DAY_MS

    sim = sim_factory()  # the true clock
    agent = agent_factory(sim, ["BTCUSDT"], data_dir=data_dir, **env)
    clock = agent.status()["clock"]
    moved = clock["moved_aside"]
    assert clock["state"] == "ok" and moved is not None and moved["table"] == "klines_ahead"
    assert moved["stream_count"] == 7 and moved["symbols"] == ["BTCUSDT"] and moved["max_ahead_ms"] > 2 * DAY_MS
    assert {s["interval"] for s in moved["streams"]} == {"1m", "5m", "15m", "30m", "1h", "4h", "1d"}
    assert all(s["ahead_ms"] > 2 * DAY_MS for s in moved["streams"] if s["interval"] != "1d")
    assert abs(clock["source_time_ms"] - sim_now(sim)) < DAY_MS
    entry = never_ahead(agent, sim, 2.0)
    assert entry["status"] == "ok" and entry["event_time"] > sim_now(sim) - DAY_MS
    cached = int(client.hget(f"{redis_prefix}BTCUSDT", "event_time") or 0)
    assert cached <= sim_now(sim) + TOLERANCE_MS, "the stale Redis entry is gone"
    newest = agent.call("kline.history", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1})["candles"][-1]
    assert newest["open_time"] <= sim_now(sim)
    client.close()

    worker = pool_worker(broker, data_dir, tmp_path / "worker")
    try:
        # the new worker's view of the agent is a report behind it (it failed once under CI's load with the
        # report from before the move): wait for the one that names it
        health = detailed_health(agent, lambda h: h["status"] == "healthy" and bool(
            h["dependencies"].get("data_agent", {}).get("store_clock", {}).get("moved_aside")))
        store_clock = health["dependencies"]["data_agent"]["store_clock"]
        assert store_clock["state"] == "ok" and store_clock["moved_aside"]["candles"] == moved["candles"]
    finally:
        worker.stop()


def test_a_source_clock_going_back_under_a_running_agent_is_reported_and_not_served(
        sim_factory: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent], broker: Broker,
        tmp_path: Path) -> None:
    data_dir = tmp_path / "shared-data"
    first = sim_factory()
    agent = agent_factory(first, ["BTCUSDT"], data_dir=data_dir, HISTORY_DEPTH="5",
                          TACORE_INGEST_CLOCK_CHECK_S="0.5")
    agent.wait_flowing(7)
    time.sleep(1.0)
    ws_port, rest_port = first.ws_port, first.rest_port
    first.stop()
    behind = sim_factory(ws_port=ws_port, rest_port=rest_port, start_time_ms=int(time.time() * 1000) - 2 * DAY_MS)

    def reported() -> dict[str, Any] | None:
        clock: dict[str, Any] = agent.status()["clock"]
        return clock if clock["state"] == "ahead" else None

    clock = wait_until(reported, 15, "the clock check to find candles ahead", interval=0.2)
    assert clock["ahead_streams"] >= 1 and clock["max_ahead_ms"] > DAY_MS
    assert clock["ahead"][0]["symbol"] == "BTCUSDT"
    never_ahead(agent, behind, 2.0)
    worker = pool_worker(broker, data_dir, tmp_path / "worker")
    try:
        health = detailed_health(agent, lambda h: h["status"] == "degraded")
        assert health["dependencies"]["data_agent"]["store_clock"]["state"] == "ahead"
    finally:
        worker.stop()
    agent.stop()

    restarted = agent_factory(behind, ["BTCUSDT"], data_dir=data_dir, HISTORY_DEPTH="5")
    clock = restarted.status()["clock"]
    assert clock["state"] == "ok" and clock["moved_aside"]["symbols"] == ["BTCUSDT"]
    never_ahead(restarted, behind, 1.0)
