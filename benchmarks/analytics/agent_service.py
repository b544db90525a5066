"""Shared by the analytics benchmark cases: synthetic candles in a chDB directory, then a real broker and data
agent serving it, and timed calls through the broker.

chDB lets one process open a directory: the seeding runs in a spawned child (which may also time the
domain function in-process on the same store, for the breakdown), exits, and only then does the data agent
open the directory. Every process started here is stopped by its pid.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from clients import LazyPirateClient
from tacore.intervals import INTERVAL_MS
from tacore.markets import load_markets
from tacore.store.klines import KlineRow, KlineStore, version_of

PY = sys.executable
DAY_MS = 86_400_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def us_symbols(count: int) -> list[str]:
    """Synthetic US tickers (letters that no crypto quote suffix ends with)."""
    letters = "ACDFGHJKLMNPQRSVWXZ"
    return [f"Q{letters[i // len(letters) % len(letters)]}{letters[i % len(letters)]}" for i in range(count)]


def crypto_symbols(count: int) -> list[str]:
    return [f"C{i:03d}USDT" for i in range(count)]


def open_times(symbol: str, interval: str, count: int, end_ms: int) -> list[int]:
    """The last ``count`` candle open times before ``end_ms``: NYSE sessions for a US daily series, every
    interval for the rest."""
    market = load_markets(None).market_of(symbol)
    step = INTERVAL_MS[interval]
    if market is not None and market.name == "US" and interval == "1d":
        sessions = market.calendar.sessions(end_ms - (count * 2 + 30) * DAY_MS, end_ms)
        return [o for o, _ in sessions if o + DAY_MS <= end_ms][-count:]
    last = end_ms - end_ms % step - step
    return [last - (count - 1 - i) * step for i in range(count)]


def synthetic_rows(symbol: str, interval: str, times: list[int], seed: int) -> list[KlineRow]:
    """A random walk with fat tails and some volume, as closed candles."""
    rng = np.random.default_rng(seed)
    n = len(times)
    closes = 50.0 * (1 + seed % 7) * np.cumprod(1.0 + 0.0003 + rng.standard_t(5, n) * 0.012)
    opens = np.r_[closes[:1], closes[:-1]]
    spread = np.abs(rng.normal(0, 0.006, n))
    volumes = rng.lognormal(10, 0.5, n)
    step = INTERVAL_MS[interval]
    return [KlineRow(symbol, interval, t, t + step - 1, float(o), float(max(o, c) * (1 + s)),
                     float(min(o, c) * (1 - s)), float(c), float(v), float(v * c), 100, float(v / 2),
                     float(v * c / 2), True, t + step, version_of(True, t + step))
            for t, o, c, s, v in zip(times, opens, closes, spread, volumes, strict=True)]


@dataclass(frozen=True)
class SeedPlan:
    """Which series to write: (symbol, interval, candles)."""

    series: list[tuple[str, str, int]]
    end_ms: int


def _seed_child(data_dir: str, plan: SeedPlan, probe: Callable[[KlineStore], dict[str, Any]] | None,
                out: Any) -> None:
    store = KlineStore(f"chdb://{Path(data_dir).resolve()}/klines")
    store.open()
    rows: list[KlineRow] = []
    for i, (symbol, interval, count) in enumerate(plan.series):
        rows.extend(synthetic_rows(symbol, interval, open_times(symbol, interval, count, plan.end_ms), seed=i))
    for start in range(0, len(rows), 50_000):
        store.insert(rows[start:start + 50_000])
    result: dict[str, Any] = {"rows": len(rows)}
    if probe is not None:
        result.update(probe(store))
    store.close()
    out.send(result)


def seed(data_dir: Path, plan: SeedPlan, probe: Callable[[KlineStore], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write ``plan`` into ``data_dir`` from a spawned child (which runs ``probe(store)`` before it closes)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_seed_child, args=(str(data_dir), plan, probe, child))
    proc.start()
    child.close()
    result: dict[str, Any] = parent.recv() if parent.poll(600) else {}
    proc.join(60)
    if proc.exitcode != 0 or not result:
        raise RuntimeError(f"seeding failed (exit code {proc.exitcode})")
    return result


def timed(fn: Callable[[], Any], requests: int, warmup: int) -> list[float]:
    """Milliseconds per call of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
            "mean_ms": round(statistics.fmean(ordered), 3), "n": len(ordered)}


@dataclass
class AgentService:
    """``tacore broker`` and ``tacore data-agent`` on free ports over ``data_dir``."""

    workdir: Path
    data_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client: LazyPirateClient | None = None

    def start(self, timeout_s: float = 60.0) -> AgentService:
        ports = {name: str(free_port()) for name in ("ZMQ_FRONTEND_PORT", "ZMQ_BACKEND_PORT", "EVENTS_PORT",
                                                     "RECORDER_PORT", "API_PORT")}
        env = {**os.environ, **ports, "DATA_DIR": str(self.data_dir), "LOG_DIR": str(self.workdir / "logs"),
               "TACORESERVICE_LOG_LEVEL": "WARNING", "DATA_AGENT_SYMBOLS": "[]",
               "EXCHANGE_WS_URL": f"ws://127.0.0.1:{free_port()}",
               "EXCHANGE_REST_URL": f"http://127.0.0.1:{free_port()}"}
        for name in ("REDIS_URL", "CLICKHOUSE_URL", "LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL"):
            env.pop(name, None)
        for args in (["broker", "--no-request-log"], ["data-agent"]):
            log = (self.workdir / f"{args[0]}.log").open("ab")
            self.procs.append(subprocess.Popen([PY, "-m", "tacore", *args], env=env, cwd=self.workdir, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))
            log.close()
            time.sleep(0.3)
        self.client = LazyPirateClient(f"tcp://127.0.0.1:{ports['ZMQ_FRONTEND_PORT']}", timeout_ms=10_000, retries=0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                methods = self.client.call("broker.status", {}, timeout_ms=1000)["methods"]
                if methods.get("evaluate.risk", {}).get("workers") and methods.get("analyze.stock", {}).get("workers"):
                    return self
            except Exception:
                self.client.close()
                self.client = LazyPirateClient(self.client.endpoint, timeout_ms=10_000, retries=0)
            time.sleep(0.2)
        raise RuntimeError(f"the data agent did not serve the analytics methods within {timeout_s:.0f} s; see "
                           f"{self.workdir}/data-agent.log")

    def call(self, method: str, params: dict[str, Any]) -> Any:
        assert self.client is not None
        return self.client.call(method, params)

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far by the broker and the data agent (all their threads)."""
        out = {}
        for name, proc in zip(("broker", "agent"), self.procs, strict=False):
            times = psutil.Process(proc.pid).cpu_times()
            out[name] = times.user + times.system
        return out

    def timed_with_cpu(self, fn: Callable[[], Any], requests: int, warmup: int) -> dict[str, Any]:
        """``summary`` of ``timed(fn)`` plus CPU per call of the broker and the agent, and the machine's load
        (on a shared machine, the CPU figures move far less with the load than the latencies do)."""
        for _ in range(warmup):
            fn()
        before = self.cpu_s()
        load_before = os.getloadavg()[0]
        figures: dict[str, Any] = summary(timed(fn, requests, 0))
        after = self.cpu_s()
        figures.update({f"{name}_cpu_ms_per_call": round((after[name] - before[name]) * 1000.0 / requests, 3)
                        for name in after})
        figures["load_average"] = round((load_before + os.getloadavg()[0]) / 2, 2)
        figures["cpus"] = os.cpu_count()
        return figures

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.procs.clear()


def print_case(name: str, result: dict[str, Any]) -> None:
    print(json.dumps({"case": name, **result}, indent=2), flush=True)
