"""Faults of the exchange, each followed by recovery with zero missing and zero duplicate closed
candles, every stored candle equal to the one the exchange closed (``/_sim/closed``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ingest_harness import Agent, sim_get, sim_now, sim_post, streams_of, wait_complete

from tacore.exchange_sim.server import ExchangeSimulator
from tests.support.processes import wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
#: at 600x, 1m..1h candles close within a test's few seconds (1h every 6 s)
CHECKED = ("1m", "5m", "15m", "1h")


def checked_streams() -> list[tuple[str, str]]:
    return streams_of(SYMBOLS, CHECKED)


def wait_reconnected(agent: Agent, at_least: int, timeout: float = 10.0) -> None:
    def back() -> bool:
        status = agent.status()
        return bool(status["reconnects"] >= at_least and status["flowing_streams"] == status["stream_count"]
                    and status["connected"] == status["connection_count"])

    wait_until(back, timeout, f"{at_least} reconnect(s) and every stream flowing again", interval=0.1)


@pytest.mark.parametrize("mode", ["close", "abort", "shutdown"])
def test_forced_disconnect_of_every_connection_recovers_every_candle(
        mode: str, sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, SYMBOLS, TACORE_INGEST_STREAMS_PER_CONNECTION="8")  # 14 streams -> 2 connections
    agent.wait_flowing(14)
    assert agent.status()["connection_count"] == 2
    time.sleep(0.3)
    fault = sim_now(sim)
    body: dict[str, object] = {"mode": mode}
    if mode == "shutdown":
        body["grace_s"] = 5.0  # the exchange would close later; the agent must move at once
    assert len(sim_post(sim, "/_sim/disconnect", body)["connections"]) == 2
    wait_reconnected(agent, 2)
    status = agent.status()
    if mode == "shutdown":
        reasons = [c["replacements"] for c in agent.call("kline.connections")["connections"]]
        assert all(r.get("serverShutdown") == 1 for r in reasons), reasons
    wait_complete(agent, sim, checked_streams(), fault)
    assert status["dropped_rows"] == 0
    stats = sim_get(sim, "/_sim/stats")
    assert "1008" not in {str(c) for c in stats["closes_by_code"]}, "frame-rate limit tripped"
    assert stats["handshakes_refused"] == 0, "connection-attempt limit tripped"


def test_server_pings_are_answered_and_the_frame_budget_holds(
        sim_factory: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent]) -> None:
    sim = sim_factory(ping_interval_s=0.2, pong_timeout_s=1.0)
    agent = agent_factory(sim, SYMBOLS)
    agent.wait_flowing(14)
    agent.call("kline.add_symbols", {"symbols": ["SOLUSDT", "BNBUSDT", "XRPUSDT"]})  # SUBSCRIBEs among the pongs
    time.sleep(3.0)
    stats = sim_get(sim, "/_sim/stats")
    assert stats["pings_sent"] >= 10
    assert stats["closes_by_code"] == {}, stats["closes_by_code"]
    assert agent.status()["reconnects"] == 0


def test_paused_streams_are_resubscribed_and_their_gap_backfilled(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, SYMBOLS)
    agent.wait_flowing(14)
    fault = sim_now(sim)
    paused = ["btcusdt@kline_1m", "btcusdt@kline_5m", "ethusdt@kline_15m"]
    sim_post(sim, "/_sim/pause", {"seconds": 2.0, "streams": paused})
    wait_until(lambda: agent.status()["feed"]["stalls"] >= 3, 5, "the stalls to be noticed")
    wait_complete(agent, sim, checked_streams(), fault)
    status = agent.status()
    assert status["reconnects"] == 0, "a stalled stream is re-subscribed, its connection kept"
    assert status["backfilled_candles"] > 0


def test_half_open_connection_is_found_by_ping_and_replaced(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, SYMBOLS)
    agent.wait_flowing(14)
    fault = sim_now(sim)
    sim_post(sim, "/_sim/half_open", {"seconds": 30.0})
    wait_reconnected(agent, 1, timeout=8)
    status = agent.status()
    assert status["feed"]["half_open"] + status["feed"]["silent_replaced"] >= 1
    wait_complete(agent, sim, checked_streams(), fault)


def test_connections_move_before_the_exchange_age_cut(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, SYMBOLS, TACORE_INGEST_MAX_CONN_AGE_S="1.5")
    agent.wait_flowing(14)
    fault = sim_now(sim)
    wait_reconnected(agent, 2, timeout=8)
    reasons = agent.call("kline.connections")["connections"][0]["replacements"]
    assert reasons.get("max age", 0) >= 1
    wait_complete(agent, sim, checked_streams(), fault)


@pytest.mark.parametrize("status_code", [429, 418])
def test_backfill_honours_retry_after(status_code: int, sim: ExchangeSimulator,
                                      agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, SYMBOLS, TACORE_INGEST_BACKFILL_CONCURRENCY="1")  # one request at a time
    agent.wait_flowing(14)
    fault = sim_now(sim)
    sim_post(sim, "/_sim/rest_failures", {"count": 2, "status": status_code, "retry_after": 1})
    requests_before = sim_get(sim, "/_sim/stats")["rest_requests"]
    started = time.monotonic()
    sim_post(sim, "/_sim/disconnect", {"mode": "abort"})
    wait_until(lambda: agent.status()["backfill"]["throttled"] >= 1, 5, "a throttled backfill")
    first_refusal = time.monotonic()
    stats = sim_get(sim, "/_sim/stats")
    # while the Retry-After window is open the agent sends nothing more to the REST API
    wait_until(lambda: agent.status()["backfill"]["throttled"] >= 2, 5, "the second refusal")
    assert time.monotonic() - first_refusal >= 0.8, "the second try came before Retry-After elapsed"
    assert stats["rest_requests"] - requests_before <= 8
    wait_complete(agent, sim, checked_streams(), fault)
    backfill = agent.status()["backfill"]
    assert backfill["throttled"] == 2 and backfill["throttled_wait_s"] >= 2.0
    assert time.monotonic() - started >= 2.0


def test_restart_keeps_the_subscription_set_and_fills_the_downtime(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent], tmp_path: Path,
        storage_env: dict[str, str]) -> None:
    data_dir = tmp_path / "shared-data"  # storage_env: embedded chDB, then a ClickHouse server (CLICKHOUSE_URL)
    first = agent_factory(sim, [], data_dir=data_dir, **storage_env)
    first.call("kline.add_symbols", {"symbols": SYMBOLS})
    first.wait_flowing(14)
    time.sleep(0.5)
    assert first.stop() == 0, "SIGTERM must end the agent cleanly"
    fault = sim_now(sim)
    time.sleep(1.0)  # candles close while no agent runs
    second = agent_factory(sim, [], data_dir=data_dir, **storage_env)
    assert second.call("kline.symbols")["symbols"] == SYMBOLS
    second.wait_flowing(14)
    wait_complete(second, sim, checked_streams(), fault)
    status = second.status()
    assert status["backfilled_candles"] > 0
    assert status["storage"]["kind"] == ("clickhouse" if storage_env else "chdb")
    # the catch-up is told in one summary line, not a line per stream or per page
    log_lines = (Path(second.process.env["LOG_DIR"]) / "tacoreservice.log").read_text().splitlines()
    print("\n".join(line for line in log_lines if "backfill" in line))
    summaries = [line for line in log_lines if "backfill caught up" in line]
    assert summaries and "14 stream(s) of 2 symbol(s)" in summaries[0], summaries
    assert not [line for line in log_lines if "HTTP Request" in line or "klines?" in line]
