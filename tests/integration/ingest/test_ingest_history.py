"""History before the live stream, against the simulator and a real data agent: a symbol added holds the
configured depth of every interval, exact and without holes; a restart fetches only what is missing and
says so in one line; the exchange's weight limit is never hit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest_harness import Agent, completeness, sim_get, sim_now, streams_of

from tacore.exchange_sim.server import ExchangeSimulator
from tacore.intervals import INTERVAL_MS, INTERVALS
from tests.support.processes import wait_until

DEPTH = 30
#: 1m keeps more than the others: the per-interval setting
PER_INTERVAL = {"1m": 60}


def depth_of(interval: str, per_interval: dict[str, int] | None = None, default: int = DEPTH) -> int:
    return (per_interval or PER_INTERVAL).get(interval, default)


def history_done(agent: Agent, timeout: float = 30.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        history = agent.status()["history"]
        return history if history["done"] and history["pending_streams"] == 0 else None

    result: dict[str, Any] = wait_until(done, timeout, "the history fetch to finish", interval=0.2)
    return result


def closed_candles(agent: Agent, symbol: str, interval: str) -> list[dict[str, Any]]:
    return [c for c in agent.history(symbol, interval, start=0) if c["closed"]]


def depth_problems(agent: Agent, sim: ExchangeSimulator, symbol: str, since: int, until: int,
                   depths: dict[str, int]) -> list[str]:
    intervals = tuple(depths)
    """The agent planned at some simulated time in [since, until]: each interval's stored candles must start
    ``depth`` intervals before the candle running then, and run without a hole to the live stream's."""
    problems = []
    for interval in intervals:
        stored = closed_candles(agent, symbol, interval)
        step = INTERVAL_MS[interval]
        earliest = since - since % step - depths[interval] * step
        latest = until - until % step - depths[interval] * step
        if not stored:
            problems.append(f"{symbol} {interval}: nothing stored")
        elif not earliest <= stored[0]["open_time"] <= latest:
            problems.append(f"{symbol} {interval}: starts at {stored[0]['open_time']}, not in [{earliest}, {latest}]")
        elif stored[-1]["open_time"] < until - until % step - step:
            problems.append(f"{symbol} {interval}: does not reach the live stream yet")
    # every stored candle is the exchange's, no hole from the oldest to the newest
    return problems or completeness(agent, sim, streams_of([symbol], intervals), spanning=None)


def assert_holds_depth(agent: Agent, sim: ExchangeSimulator, symbol: str, since: int, until: int,
                       depths: dict[str, int]) -> None:
    last: list[str] = []

    def holds() -> bool:
        nonlocal last
        last = depth_problems(agent, sim, symbol, since, until, depths)
        return not last

    try:
        wait_until(holds, 20, "the depth stored", interval=0.3)  # the agent's first INSERT takes ~2 s (chDB)
    except AssertionError:
        raise AssertionError(last) from None


def assert_complete(agent: Agent, sim: ExchangeSimulator, spanning: int | None) -> None:
    """Every stored candle is the exchange's without a hole, across the restart for the short intervals
    (the longer ones have not closed a candle since)."""
    last: list[str] = []

    def complete() -> bool:
        nonlocal last
        last = completeness(agent, sim, streams_of(["BTCUSDT"], ("1m", "5m", "15m")), spanning)
        last += completeness(agent, sim, streams_of(["BTCUSDT"], INTERVALS[3:]), None)
        return not last

    try:
        wait_until(complete, 20, "complete candles", interval=0.3)  # fetched is not yet committed
    except AssertionError:
        raise AssertionError(last) from None


def test_added_symbols_hold_the_configured_depth_of_every_interval(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent], storage_env: dict[str, str]) -> None:
    # storage_env: embedded chDB, then a ClickHouse server (CLICKHOUSE_URL)
    agent = agent_factory(sim, HISTORY_DEPTH=str(DEPTH), HISTORY_DEPTH_PER_INTERVAL=json.dumps(PER_INTERVAL),
                          **storage_env)
    added_at = sim_now(sim)
    reply = agent.call("kline.add_symbols", {"symbols": ["BTCUSDT", "ETHUSDT"]})
    answered_at = sim_now(sim)
    assert reply["status"] == "ok"
    history = history_done(agent)
    depths = {i: depth_of(i) for i in INTERVALS}
    assert history["depth"] == depths
    assert history["candles_wanted"] >= 2 * sum(depths.values())
    assert history["candles_fetched"] >= 2 * sum(depths.values()) and history["candles_stored"] > 0
    assert history["weight_used"] > 0 and history["weight_budget_per_min"] == 4800
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert_holds_depth(agent, sim, symbol, added_at, answered_at, depths)
    stats = sim_get(sim, "/_sim/stats")
    assert stats["rest_weight_refused"] == 0 and stats["rest_failures_injected"] == 0
    status = agent.status()
    assert history["weight"]["total"] == history["weight_used"] and history["weight"]["waits"] == 0
    assert status["feed"]["closed_live"] > 0, "the live stream runs alongside"


def test_a_restart_fetches_only_what_is_missing_and_logs_one_summary_line(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent], tmp_path: Path) -> None:
    data_dir = tmp_path / "shared-data"
    # at 600x a restart is 30-100 simulated minutes (more on a busy machine): every window is kept longer
    # than that (1m: 600 minutes, 15m: 30 h), so a restart finds them all covered
    depth = 2 * DEPTH
    per_interval = json.dumps({"1m": 600, "5m": 200})
    env = {"data_dir": data_dir, "HISTORY_DEPTH_PER_INTERVAL": per_interval}
    first = agent_factory(sim, ["BTCUSDT"], HISTORY_DEPTH=str(depth), **env)
    assert history_done(first)["candles_stored"] >= 600 + 200 + 5 * depth
    stopped_at = sim_now(sim)
    first.stop()
    requests_before = sim_get(sim, "/_sim/stats")["rest_requests"]

    second = agent_factory(sim, ["BTCUSDT"], HISTORY_DEPTH=str(depth), **env)
    history = history_done(second)
    away_min = (sim_now(sim) - stopped_at) / 60_000
    assert history["candles_stored"] == 0, "every window is still covered: no history fetched again"
    resume_bound = sum(away_min * 60_000 / step + 2 for step in INTERVAL_MS.values())
    assert history["candles_wanted"] <= resume_bound, (history, away_min)  # only the time away
    requests = sim_get(sim, "/_sim/stats")["rest_requests"] - requests_before
    assert requests <= 2 * len(INTERVALS) + 2, f"{requests} REST requests for a restart"
    assert_complete(second, sim, stopped_at)
    second.stop()

    deeper_at = sim_now(sim)
    deeper = agent_factory(sim, ["BTCUSDT"], HISTORY_DEPTH=str(2 * depth), **env)
    registered_at = sim_now(sim)
    history = history_done(deeper)
    # the default intervals fetch the difference only: depth each, less what the window slid meanwhile
    assert 0 < history["candles_stored"] <= 5 * depth
    assert_holds_depth(deeper, sim, "BTCUSDT", deeper_at, registered_at, dict.fromkeys(INTERVALS[2:], 2 * depth))
    assert_complete(deeper, sim, None)

    for agent in (second, deeper):
        output = agent.process.output()
        assert output.count("history (depth") == 1, output[-3000:]
        assert output.count("history complete") == 1, output[-3000:]
        assert "HTTP Request" not in output, "a line per REST request"
        assert not [line for line in output.splitlines() if "btcusdt" in line.lower()], output[-3000:]
