"""The data agent's US feed against the simulator's Alpaca API: history over REST, minute bars from the
stream, longer intervals closed from Alpaca's own aggregates, restarts and reconnects, and the errors a
missing or wrong key pair gives. Real processes: a broker, data agents, the simulator, chDB."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from ingest_harness import Agent, sim_now

from clients import RemoteError
from tacore.events import EventSubscriber
from tacore.exchange_sim.config import SimConfig
from tacore.exchange_sim.server import ExchangeSimulator
from tacore.intervals import INTERVALS
from tests.support.ports import free_ports
from tests.support.processes import wait_until

NUMERIC = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base_volume",
           "taker_buy_quote_volume")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


#: Tuesday 2 July 2024, 10:52 New York
BEFORE_ELEVEN = ms("2024-07-02T14:52:00")
SPEED = 300.0  # a simulated minute every 200 ms

US_AGENT_ENV = {
    "ALPACA_API_KEY_ID": "SIMKEYID", "ALPACA_API_SECRET_KEY": "SIMSECRETKEY", "ALPACA_FEED": "iex",
    "TACORE_INGEST_ALPACA_CLOSE_DELAY_S": "0.05", "TACORE_INGEST_ALPACA_BACKOFF_INITIAL_S": "0.2",
    "TACORE_INGEST_ALPACA_BACKOFF_MAX_S": "1.0",
    # the first US symbol waits for the NYSE calendar (a second or two, more on a busy machine)
    "TACORE_INGEST_SUBSCRIBE_WAIT_S": "10.0",
    "HISTORY_DEPTH": "1000",  # the default (the harness starts crypto-only agents without history)
}


@pytest.fixture
def us_sim(sim_factory: Callable[..., ExchangeSimulator]) -> Callable[..., ExchangeSimulator]:
    def start(start_time_ms: int, **overrides: Any) -> ExchangeSimulator:
        sim = sim_factory(**{"clock_speed": SPEED, "start_time_ms": start_time_ms, **overrides})
        assert sim.alpaca is not None
        sim.alpaca.market_now()  # the NYSE calendar, loaded before the clock matters
        return sim

    return start


def us_agent(agent_factory: Callable[..., Agent], sim: ExchangeSimulator, symbols: list[str] | None = None,
             **env: str) -> Agent:
    return agent_factory(sim, symbols, ALPACA_DATA_URL=sim.alpaca_rest_url, ALPACA_STREAM_URL=sim.alpaca_stream_url,
                         **{**US_AGENT_ENV, **env})


def truth(sim: ExchangeSimulator, symbol: str, interval: str, start: int, end: int) -> list[dict[str, Any]]:
    reply = httpx.get(sim.rest_url + "/_sim/alpaca/closed", timeout=30, params={
        "symbol": symbol, "interval": interval, "feed": "iex", "start": start, "end": end})
    reply.raise_for_status()
    candles: list[dict[str, Any]] = reply.json()["candles"]
    return candles


def us_problems(agent: Agent, sim: ExchangeSimulator, symbol: str, intervals: tuple[str, ...] | list[str],
                since: int, until: int) -> list[str]:
    """The stored closed candles opening in [since, until] must be exactly the simulator's closed ones."""
    problems = []
    for interval in intervals:
        stored = [c for c in agent.history(symbol, interval, start=since, end=until) if c["closed"]]
        want = truth(sim, symbol, interval, since, until)
        if [c["open_time"] for c in want] != [c["open_time"] for c in stored]:
            missing = sorted({c["open_time"] for c in want} - {c["open_time"] for c in stored})
            problems.append(f"{symbol} {interval}: {len(want)} closed, {len(stored)} stored, missing {missing[:3]}")
            continue
        for w, got in zip(want, stored, strict=True):
            if any(float(w[f]) != got[f] for f in NUMERIC) or w["trades"] != got["trades"] \
                    or w["close_time"] != got["close_time"]:
                problems.append(f"{symbol} {interval}: candle {got['open_time']} differs: {w} != {got}")
                break
    return problems


def wait_exact(agent: Agent, sim: ExchangeSimulator, symbol: str, intervals: tuple[str, ...] | list[str],
               since: int, until: int, timeout: float = 30.0) -> None:
    """Once the simulated clock is past ``until``, the agent converges on the simulator's candles."""
    wait_until(lambda: sim_now(sim) > until + 120_000, timeout, "the simulated clock")
    last: list[str] = []

    def exact() -> bool:
        nonlocal last
        last = us_problems(agent, sim, symbol, intervals, since, until)
        return not last

    try:
        wait_until(exact, timeout, "stored US candles equal to the simulator's", interval=0.3)
    except AssertionError:
        raise AssertionError(f"not exact after {timeout} s: {last[:6]}") from None


@pytest.fixture
def paused_sim() -> Iterator[Callable[..., ExchangeSimulator]]:
    """Simulators on fixed free ports, built but not started: an agent is configured (and booted) first,
    then ``sim.start()`` starts the clock, so a slow process start on a busy machine does not eat the
    simulated session."""
    sims: list[ExchangeSimulator] = []

    def build(start_time_ms: int, clock_speed: float) -> ExchangeSimulator:
        ws, rest, alpaca_rest, alpaca_ws = free_ports(4)
        sim = ExchangeSimulator(SimConfig(clock_speed=clock_speed, start_time_ms=start_time_ms, ws_port=ws,
                                          rest_port=rest, alpaca_rest_port=alpaca_rest, alpaca_ws_port=alpaca_ws))
        assert sim.alpaca is not None
        sim.alpaca.market_now()
        sims.append(sim)
        return sim

    yield build
    for sim in sims:
        sim.stop()


def test_us_symbols_flow_from_alpaca_exactly_through_the_session_close(
        paused_sim: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent]) -> None:
    sim = paused_sim(ms("2024-07-02T19:50:00"), 60.0)  # 15:50 New York, a simulated minute a second
    agent = us_agent(agent_factory, sim)
    events = EventSubscriber(agent.events_endpoint, topics=("kline.AAPL.",))
    try:
        sim.start()
        reply = agent.call("kline.add_symbols", {"symbols": ["AAPL", "MSFT"]})
        assert reply["status"] == "ok" and [r["market"] for r in reply["results"]] == ["US", "US"]
        assert agent.call("kline.symbols")["markets"] == {"US": ["AAPL", "MSFT"]}
        # history: 1,000 candles of each interval (1d: four years of sessions), from REST
        oldest = wait_until(lambda: [c for c in agent.history("AAPL", "1d", start=0) if c["closed"]][999:] and
                            agent.history("AAPL", "1d", start=0), 40, "1,000 daily candles of history")
        days = agent.history("AAPL", "1d")  # the newest 1,000
        assert oldest[0]["open_time"] < days[0]["open_time"]  # 1,000 closed sessions before today's
        assert all(c["open_time"] % 86_400_000 == 0 for c in days)  # UTC midnight of the session's date
        assert days[-1]["open_time"] == ms("2024-07-02T00:00:00")  # today: running, or closed at 16:00
        cached = agent.call("get.market_data", {"symbols": ["AAPL"]})["symbols"]["AAPL"]
        assert cached["status"] == "ok"
        # live: minutes from the stream; at 16:00 New York every interval's candle closes with the session
        close = ms("2024-07-02T20:00:00")
        last = {"1m": close - 60_000, "5m": close - 300_000, "15m": close - 900_000, "30m": close - 1_800_000,
                "1h": close - 3_600_000, "4h": ms("2024-07-02T16:00:00"), "1d": ms("2024-07-02T00:00:00")}
        seen: list[tuple[str, int]] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not set(last.items()) <= set(seen):
            received = events.recv(timeout_ms=500)
            if received is not None:
                event = received[1]
                assert event["event"] == "DATA_READY" and event["candle"]["closed"] is True
                seen.append((event["interval"], event["candle"]["open_time"]))
        assert set(last.items()) <= set(seen), sorted(set(last.items()) - set(seen))
        assert len(seen) == len(set(seen))  # each closed candle announced once
        wait_exact(agent, sim, "AAPL", INTERVALS, ms("2024-07-01T00:00:00"), close)  # 1,000 minutes: 2.5 days
        wait_exact(agent, sim, "MSFT", INTERVALS, ms("2024-07-01T00:00:00"), close)
        status = agent.status()
        alpaca = status["feeds"]["alpaca"]
        assert alpaca["state"] == "streaming" and alpaca["feed"] == "iex" and alpaca["stream_count"] == 14
        assert status["markets"] == {"US": ["AAPL", "MSFT"]} and status["status"] == "ok"
        assert alpaca["counters"]["closed_live"] > 0 and alpaca["counters"]["closed_fetched"] > 0
        assert alpaca["counters"]["closed_from_minutes"] == 0  # every closed candle is Alpaca's aggregate
        conns = agent.call("kline.connections")["connections"]
        assert [c["market"] for c in conns] == ["US"] and conns[0]["url"].endswith("/v2/iex")
        # a late trade in a minute of a closed bucket: updatedBars fixes the minute, the buckets are fetched again
        late = close - 180_000
        before = agent.history("AAPL", "5m", start=close - 300_000, end=close - 300_000)[0]
        reply = httpx.post(sim.rest_url + "/_sim/alpaca/late_trade",
                           json={"symbol": "AAPL", "minute_ms": late, "shares": 7000}).json()
        assert reply["updates_sent"] == 1
        wait_until(lambda: agent.history("AAPL", "5m", start=close - 300_000, end=close - 300_000)[0]["volume"]
                   == before["volume"] + 7000, 15, "the 5m candle refreshed after the late trade")
        wait_exact(agent, sim, "AAPL", INTERVALS, ms("2024-07-02T00:00:00"), close)
        assert agent.status()["feeds"]["alpaca"]["counters"]["corrections"] == 1
        assert "SIMSECRETKEY" not in agent.process.output()  # the secret never reaches the log
    finally:
        events.close()


def test_a_crash_and_a_dropped_stream_mid_session_leave_no_holes(
        paused_sim: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent], tmp_path: Path) -> None:
    sim = paused_sim(ms("2024-07-02T15:00:00"), 60.0)  # 11:00 New York
    data = tmp_path / "us-data"
    agent = us_agent(agent_factory, sim, data_dir=data)
    sim.start()
    agent.call("kline.add_symbols", {"symbols": ["NVDA"]})
    wait_until(lambda: agent.history("NVDA", "1m", start=ms("2024-07-02T15:01:00")), 30, "live minutes")
    agent.process.stop(signal.SIGKILL)  # a crash: whatever was not flushed is lost too
    crashed_at = sim_now(sim)
    stored = json.loads((data / "data-agent" / "subscriptions.json").read_text())
    assert ["NVDA", "1d", "US"] in stored["streams"]  # streams persist with their market
    wait_until(lambda: sim_now(sim) > crashed_at + 120_000, 30, "two minutes without an agent")
    agent2 = us_agent(agent_factory, sim, data_dir=data)
    assert agent2.call("kline.symbols")["markets"] == {"US": ["NVDA"]}
    wait_until(lambda: agent2.status()["feeds"]["alpaca"]["state"] == "streaming", 15, "the stream")
    httpx.post(sim.rest_url + "/_sim/alpaca/disconnect", json={"mode": "abort"})
    wait_until(lambda: agent2.status()["feeds"]["alpaca"]["connection"]["reconnects"] >= 1, 15, "a reconnect")
    until = sim_now(sim) + 60_000
    wait_exact(agent2, sim, "NVDA", INTERVALS, ms("2024-07-01T00:00:00"), until)
    minutes = agent2.history("NVDA", "1m", start=ms("2024-07-02T15:00:00"), end=until)
    assert len(minutes) == (until - ms("2024-07-02T15:00:00")) // 60_000 + 1  # the crash's hole was filled
    status = agent2.status()["feeds"]["alpaca"]
    assert status["counters"]["disconnects"] >= 1 and status["counters"]["backfilled"] > 0


def test_missing_keys_are_unavailable_and_never_a_silent_fallback(
        us_sim: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent]) -> None:
    sim = us_sim(BEFORE_ELEVEN)
    agent = agent_factory(sim, ALPACA_DATA_URL=sim.alpaca_rest_url, ALPACA_STREAM_URL=sim.alpaca_stream_url)
    with pytest.raises(RemoteError) as err:
        agent.call("kline.add_stream", {"symbol": "AAPL", "interval": "1m"})
    assert err.value.code == "UNAVAILABLE"
    assert "ALPACA_API_KEY_ID" in str(err.value) and "ALPACA_API_SECRET_KEY" in str(err.value)
    # nothing was half-added, crypto still works, and the status says why US data is missing
    assert agent.call("kline.add_symbols", {"symbols": ["BTCUSDT"]})["status"] == "ok"
    status = agent.status()
    assert status["feeds"]["alpaca"]["state"] == "unconfigured"
    assert "ALPACA_API_KEY_ID" in status["feeds"]["alpaca"]["message"]
    assert agent.call("kline.symbols")["markets"] == {"CRYPTO": ["BTCUSDT"]}


def test_bad_us_symbols_and_a_wrong_key_pair(
        us_sim: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent]) -> None:
    sim = us_sim(BEFORE_ELEVEN)
    agent = us_agent(agent_factory, sim)
    for params, field in [({"symbol": "ZZZZ", "interval": "1m"}, "ZZZZ"),  # well formed, not listed by Alpaca
                          ({"symbol": "ABCDEFG", "interval": "1m"}, "ABCDEFG"),  # no market's symbol
                          ({"symbol": "AAPL", "interval": "1m", "market": "MOON"}, "MOON")]:
        with pytest.raises(RemoteError) as err:
            agent.call("kline.add_stream", params)
        assert err.value.code == "INVALID_PARAMS" and field in str(err.value), err.value
    assert agent.call("kline.symbols")["count"] == 0
    agent.stop()  # the agents share the broker: one at a time
    # a wrong secret: AAPL from DATA_AGENT_SYMBOLS gets a refused stream, MSFT asked for is refused at once
    wrong = us_agent(agent_factory, sim, ["AAPL"], ALPACA_API_SECRET_KEY="not-the-secret")
    with pytest.raises(RemoteError) as err:
        wrong.call("kline.add_stream", {"symbol": "MSFT", "interval": "1m"})
    assert err.value.code == "UNAVAILABLE" and "key pair" in str(err.value)
    wait_until(lambda: wrong.status()["feeds"]["alpaca"]["state"] == "auth_failed", 15, "auth_failed")
    status = wrong.status()
    assert status["status"] == "degraded" and "key pair" in status["feeds"]["alpaca"]["message"]



def test_rate_limited_and_failing_rest_is_retried_and_history_pages_through(
        us_sim: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent]) -> None:
    sim = us_sim(ms("2024-07-06T15:00:00"), clock_speed=1.0)  # a Saturday: history only
    agent = us_agent(agent_factory, sim, TACORE_INGEST_ALPACA_PAGE_LIMIT="300")
    queued = httpx.post(sim.rest_url + "/_sim/rest_failures", json={"api": "alpaca", "count": 2, "status": 429,
                                                                    "retry_after": 1}).json()
    httpx.post(sim.rest_url + "/_sim/rest_failures", json={"api": "alpaca", "count": 2, "status": 500})
    assert queued == {"pending": 2}
    agent.call("kline.add_symbols", {"symbols": ["TSLA", "GOOGL"]})
    friday = ms("2024-07-05T00:00:00")
    for symbol in ("TSLA", "GOOGL"):
        wait_until(lambda s=symbol: len([c for c in agent.history(s, "1m", start=0) if c["closed"]]) == 1000, 40,
                   f"{symbol}'s 1,000 minutes")
        wait_exact(agent, sim, symbol, INTERVALS, ms("2024-07-03T00:00:00"), friday + 86_399_999)
    rest = agent.status()["feeds"]["alpaca"]["rest"]
    assert rest["throttled"] == 2 and rest["throttled_wait_s"] >= 2 and rest["failures"] >= 2
    assert rest["pages"] >= 2 * 1000 // 300  # 2,000 minutes in pages of 300 bars
    stats = httpx.get(sim.rest_url + "/_sim/stats").json()["alpaca"]
    assert stats["rest_failures_injected"] == 4 and stats["rest_failures_pending"] == 0


def test_a_us_restart_fetches_only_the_history_the_store_lacks_and_reports_progress(
        us_sim: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent], tmp_path: Path) -> None:
    sim = us_sim(BEFORE_ELEVEN)
    data = tmp_path / "us-data"

    def history_done(agent: Agent) -> dict[str, Any]:
        result: dict[str, Any] = wait_until(lambda: (h := agent.status()["history"])["done"] and h, 40,
                                            "the history fetch", interval=0.2)
        return result

    first = us_agent(agent_factory, sim, data_dir=data, HISTORY_DEPTH="50")
    first.call("kline.add_symbols", {"symbols": ["AAPL"]})
    history = history_done(first)
    assert history["candles_stored"] >= 7 * 50 - 7 and history["pending_streams"] == 0
    wait_until(lambda: len([c for c in first.history("AAPL", "1d", start=0) if c["closed"]]) >= 50, 15,
               "the daily history stored")
    first.stop()
    second = us_agent(agent_factory, sim, data_dir=data, HISTORY_DEPTH="50")
    history = history_done(second)
    assert history["candles_stored"] == 0, "every window is covered: no history fetched again"
    assert history["streams_done"] == 7 and history["candles_wanted"] < 7 * 50, history
    assert len([c for c in second.history("AAPL", "1d", start=0) if c["closed"]]) >= 50
