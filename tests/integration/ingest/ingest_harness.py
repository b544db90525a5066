"""Helpers for the data agent's integration tests: the agent as a real ``tacore data-agent`` process
joined to a real broker, calls through the broker, and the completeness check against the simulator.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from clients import LazyPirateClient
from tacore.exchange_sim.server import ExchangeSimulator
from tests.support.ports import free_port
from tests.support.processes import TACoreProcess, wait_until

#: Simulated time runs 600x: a 1m candle closes every 100 ms, 1h every 6 s.
CLOCK_SPEED = 600.0
UPDATE_INTERVAL_MS = 50.0
NUMERIC = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base_volume",
           "taker_buy_quote_volume")

#: Agent tuning for a simulator this fast (the defaults are for Binance's 2 s updates).
FAST_AGENT_ENV = {
    "TACORE_INGEST_STALL_S": "0.6",
    "TACORE_INGEST_FLUSH_MS": "100",
    "TACORE_INGEST_BACKOFF_INITIAL_S": "0.2",
    "TACORE_INGEST_BACKOFF_MAX_S": "2.0",
    "TACORE_INGEST_SUBSCRIBE_WAIT_S": "3.0",
    "HISTORY_DEPTH": "0",  # tests of the live feed start at the live stream; the history tests set a depth
}


class Broker:
    """``tacore broker`` on free ports."""

    def __init__(self, workdir: Path) -> None:
        self.process = TACoreProcess(workdir, ["broker", "--no-request-log"], env={"HEARTBEAT_INTERVAL_MS": "200"})

    @property
    def ports(self) -> dict[str, int]:
        return self.process.ports

    @property
    def frontend(self) -> str:
        return self.process.frontend

    def start(self) -> Broker:
        self.process.start()
        self.process.wait_healthy(workers=0)
        return self

    def stop(self) -> None:
        self.process.stop()


class Agent:
    """A ``tacore data-agent`` process; calls go through the broker like any client's."""

    def __init__(self, broker: Broker, sim: ExchangeSimulator, workdir: Path, env: dict[str, str]) -> None:
        self.broker = broker
        self.sim = sim
        self.worker_id = f"data-agent-{uuid.uuid4().hex[:6]}"
        self.events_port = free_port()
        ports = {**broker.ports, "EVENTS_PORT": self.events_port}
        self.env = {
            "EXCHANGE_WS_URL": sim.ws_url, "EXCHANGE_REST_URL": sim.rest_url,
            "TACORE_INGEST_WORKER_ID": self.worker_id, **FAST_AGENT_ENV, **env,
        }
        self.process = TACoreProcess(workdir, ["data-agent"], env=self.env, ports=ports)
        self.client = LazyPirateClient(broker.frontend, timeout_ms=8000, retries=0)
        self.launched_at = 0.0

    @property
    def events_endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.events_port}"

    def start(self, timeout: float = 20.0) -> Agent:
        self.launched_at = time.monotonic()
        self.process.start()

        def registered() -> bool:
            assert self.process.proc is not None and self.process.proc.poll() is None, self.process.output()[-3000:]
            workers = self.broker.process.status()["workers"]
            return any(w["worker_id"] == self.worker_id and w["state"] != "dead" for w in workers)

        wait_until(registered, timeout, "the data agent to register with the broker")
        return self

    def stop(self) -> int | None:
        return self.process.stop()

    def close(self) -> None:
        self.stop()
        self.client.close()

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.call(method, params or {})

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        return self.client.request(method, params if params is not None else {})

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("kline.status")
        return result

    def wait_flowing(self, streams: int, timeout: float = 10.0) -> dict[str, Any]:
        def flowing() -> dict[str, Any] | None:
            status = self.status()
            ok = status["stream_count"] == streams and status["flowing_streams"] == streams
            return status if ok and status["streams_with_data"] == streams else None

        result: dict[str, Any] = wait_until(flowing, timeout, f"{streams} streams flowing", interval=0.1)
        return result

    def history(self, symbol: str, interval: str, **params: Any) -> list[dict[str, Any]]:
        reply = self.call("kline.history", {"symbol": symbol, "interval": interval, "limit": 1000, **params})
        candles: list[dict[str, Any]] = reply["candles"]
        return candles


def sim_get(sim: ExchangeSimulator, path: str, **params: Any) -> Any:
    response = httpx.get(sim.rest_url + path, params=params, timeout=5.0)
    response.raise_for_status()
    return response.json()


def sim_post(sim: ExchangeSimulator, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(sim.rest_url + path, content=json.dumps(body), timeout=5.0)
    response.raise_for_status()
    return response.json()


def sim_now(sim: ExchangeSimulator) -> int:
    return int(sim_get(sim, "/_sim/stats")["sim_time_ms"])


def completeness(agent: Agent, sim: ExchangeSimulator, streams: Iterable[tuple[str, str]],
                 spanning: int | None) -> list[str]:
    """Problems with the stored closed candles of each stream, compared with what the exchange closed.

    For each stream the stored closed candles must be exactly the exchange's closed candles, field by
    field, from the first one stored to the last, and that range must span ``spanning`` (a simulated
    time of a fault), so the candles closed during the fault are covered.
    """
    problems = []
    for symbol, interval in streams:
        stored = [c for c in agent.history(symbol, interval, start=0) if c["closed"]]
        if not stored:
            problems.append(f"{symbol} {interval}: nothing stored")
            continue
        times = [c["open_time"] for c in stored]
        if len(set(times)) != len(times):
            problems.append(f"{symbol} {interval}: duplicate candles")
        if spanning is not None and not times[0] <= spanning <= stored[-1]["close_time"]:
            problems.append(f"{symbol} {interval}: stored range does not span the fault yet")
            continue
        truth = sim_get(sim, "/_sim/closed", symbol=symbol, interval=interval, start=times[0], end=times[-1])
        expected = truth["candles"]
        if [c["open_time"] for c in expected] != times:
            missing = sorted({c["open_time"] for c in expected} - set(times))
            extra = sorted(set(times) - {c["open_time"] for c in expected})
            problems.append(f"{symbol} {interval}: missing {missing[:5]} ({len(missing)}), extra {extra[:5]}")
            continue
        for want, got in zip(expected, stored, strict=True):
            if any(float(want[f]) != got[f] for f in NUMERIC) or want["trades"] != got["trades"] \
                    or want["close_time"] != got["close_time"]:
                problems.append(f"{symbol} {interval}: candle {got['open_time']} differs from the exchange's")
                break
    return problems


def wait_complete(agent: Agent, sim: ExchangeSimulator, streams: list[tuple[str, str]], spanning: int | None,
                  timeout: float = 20.0) -> None:
    """Recovery converges: every stream complete and exact across the fault (else the last problems)."""
    last: list[str] = []

    def complete() -> bool:
        nonlocal last
        last = completeness(agent, sim, streams, spanning)
        return not last

    try:
        wait_until(complete, timeout, "complete candles", interval=0.3)
    except AssertionError:
        raise AssertionError(f"incomplete after {timeout} s: {last[:10]}") from None


def streams_of(symbols: list[str], intervals: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(s, i) for s in symbols for i in intervals]


AgentFactory = Callable[..., Agent]
