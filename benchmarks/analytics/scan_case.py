"""scan.market benchmark case (issue 12 §7): 500 symbols, each a year of 1d and a day of 1m candles.

One run, all real processes: a store is seeded by a child process (an embedded chDB directory belongs
to one process), then a broker and a data agent start on it, and the same scan is answered two ways:

1. ``scan.market`` through the broker: the chain compiled to one ClickHouse query in the data agent;
2. the baseline: the same filters computed in Python (numpy, TA-Lib) over ``kline.history`` calls
   through the broker (three per symbol: the 1d year, and 1,440 1m candles in two pages of at most
   1,000), 8 calls in flight.

Both must find the same symbols. Prints p50/p99 of each and the ratio (target: scan p50 <= 50 ms,
>= 20x the baseline). The seeded store is settled like a live one: parts merged, then the newest
(still open) 1m and 1d candle of every symbol written again as a fresh part, so FINAL has work.

``FINAL`` merges only the newest partition of each interval at read time (``tacore/store/klines.py``), so
a scan's cost depends on where the clock stands in the newest 1m partition's 6 hours. By default
(``--clock worst``) the store is seeded and scanned as of the last minute of the latest 6 hours that have
passed, so the newest partition holds 6 of the day's 24 hours, the most it can; ``--clock now`` scans as
of the real time.

    python benchmarks/analytics/scan_case.py [--symbols 500] [--rounds 200] [--baseline-rounds 3] [--clock now]

``run(...)`` returns the figures as a dict (``benchmarks/bench_analytics.py`` calls it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DAY = 86_400_000
MINUTE = 60_000
#: the scan both ways compute: the design document's short form, then three general filters
CRITERIA: dict[str, Any] = {
    "min_volume": 20_000_000,
    "price_range": [1, 2000],
    "filters": [
        {"field": "rsi", "op": "less", "value": 70},
        {"field": "price", "op": "greater", "value": {"field": "sma", "period": 50}},
        {"field": "volatility", "op": "less", "value": 100},
    ],
    "sort_by": "day_quote_volume",  # min_volume's field: the traded value over the last 1,440 minutes
    "limit": 20,
}


def symbol_names(count: int) -> list[str]:
    return [f"S{i:04d}USDT" for i in range(count)]


# -- seeding (child process) -------------------------------------------------------------------------
def seed(data_dir: Path, count: int, now_ms: int) -> int:
    """A year of daily and a day of minute candles per symbol, random walks with varied price levels and
    turnover; merged, then the open candles rewritten as a fresh part."""
    from tacore.store.klines import KlineRow, KlineStore, version_of

    store = KlineStore(f"chdb://{data_dir}/klines")
    store.open()
    rng = np.random.default_rng(12)
    today, minute = now_ms - now_ms % DAY, now_ms - now_ms % MINUTE
    batch: list[KlineRow] = []
    live: list[KlineRow] = []
    rows = 0
    for symbol in symbol_names(count):
        level = float(np.exp(rng.uniform(-1, 8)))
        turnover = float(np.exp(rng.uniform(8, 13)))  # quote volume per minute
        for interval, step, n, last, sigma in (("1d", DAY, 365, today, 0.03), ("1m", MINUTE, 1440, minute, 0.001)):
            walk = np.cumsum(rng.normal(0, sigma, n))
            closes = level * np.exp(walk - walk.mean())
            opens = np.concatenate([[closes[0]], closes[:-1]])
            highs = np.maximum(opens, closes) * (1 + rng.uniform(0, sigma, n))
            lows = np.minimum(opens, closes) * (1 - rng.uniform(0, sigma, n))
            quote = turnover * (step // MINUTE) * rng.uniform(0.5, 1.5, n)
            for i in range(n):
                open_time = last - (n - 1 - i) * step
                closed = i < n - 1
                event = open_time + step - 1 if closed else now_ms - 1000
                row = KlineRow(symbol, interval, open_time, open_time + step - 1, float(opens[i]), float(highs[i]),
                               float(lows[i]), float(closes[i]), float(quote[i] / closes[i]), float(quote[i]), 100,
                               0.0, 0.0, closed, event, version_of(closed, event))
                batch.append(row)
                if not closed:
                    live.append(row._replace(event_time=now_ms, version=version_of(False, now_ms)))
        if len(batch) >= 100_000:
            store.insert(batch)
            rows += len(batch)
            batch = []
    store.insert(batch)
    rows += len(batch)
    store.query(f"OPTIMIZE TABLE {store.table} FINAL")
    store.insert(live)
    store.close()
    return rows


# -- processes -----------------------------------------------------------------------------------------
def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class Service:
    """A broker and a data agent on ``data_dir``; stopped by pid."""

    def __init__(self, workdir: Path, data_dir: Path) -> None:
        ports = _free_ports(6)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ZMQ_", "TACORE", "REDIS"))}
        self.env.update({
            "ZMQ_FRONTEND_PORT": str(ports[0]), "ZMQ_BACKEND_PORT": str(ports[1]), "EVENTS_PORT": str(ports[2]),
            "RECORDER_PORT": str(ports[3]), "DATA_DIR": str(data_dir), "LOG_DIR": str(workdir / "logs"),
            "TACORESERVICE_LOG_LEVEL": "WARNING", "EXCHANGE_WS_URL": f"ws://127.0.0.1:{ports[4]}",
            "EXCHANGE_REST_URL": f"http://127.0.0.1:{ports[5]}", "TACORE_CONFIG": str(workdir / "none.yaml"),
        })
        (workdir / "none.yaml").write_text("{}\n")
        self.endpoint = f"tcp://127.0.0.1:{ports[0]}"
        self.procs: list[subprocess.Popen[bytes]] = []
        for args in (["broker", "--no-request-log"], ["data-agent"]):
            with (workdir / f"{args[0]}.out").open("wb") as out:
                self.procs.append(subprocess.Popen([sys.executable, "-m", "tacore", *args], cwd=workdir, env=self.env,
                                                   stdout=out, stderr=subprocess.STDOUT))

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        from clients import LazyPirateClient

        deadline = time.monotonic() + timeout_s
        with LazyPirateClient(self.endpoint, timeout_ms=1000, retries=0) as client:
            while time.monotonic() < deadline:
                try:
                    status = client.call("broker.status", {})
                    if status["methods"].get("scan.market", {}).get("workers"):
                        return
                except Exception:
                    pass
                time.sleep(0.2)
        raise RuntimeError("the data agent did not serve scan.market in time")

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far by the broker and the data agent (all their threads and children)."""
        import psutil

        out = {}
        for name, proc in zip(("broker", "agent"), self.procs, strict=True):
            times = psutil.Process(proc.pid).cpu_times()
            out[name] = times.user + times.system + times.children_user + times.children_system
        return out

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


# -- the two ways --------------------------------------------------------------------------------------
def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)

    return {"p50": pick(0.50), "p99": pick(0.99), "min": round(ordered[0], 2), "n": len(ordered)}


def scan_through_broker(endpoint: str, rounds: int, as_of: int) -> tuple[list[float], dict[str, Any]]:
    from clients import LazyPirateClient

    samples, reply = [], {}
    criteria = {**CRITERIA, "as_of": as_of}
    with LazyPirateClient(endpoint, timeout_ms=30_000, retries=0) as client:
        for _ in range(5):  # warm-up: first queries load the calendar, the parts' marks
            reply = client.scan_market("CRYPTO", criteria)
        for _ in range(rounds):
            started = time.perf_counter()
            reply = client.scan_market("CRYPTO", criteria)
            samples.append((time.perf_counter() - started) * 1000)
    return samples, reply


async def _history(client: Any, symbol: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    daily = await client.call("kline.history", {"symbol": symbol, "interval": "1d", "limit": 365})
    recent = await client.call("kline.history", {"symbol": symbol, "interval": "1m", "limit": 1000})
    minutes = recent["candles"]
    if minutes:
        older = await client.call("kline.history", {"symbol": symbol, "interval": "1m", "limit": 440,
                                                    "end": minutes[0]["open_time"] - 1})
        minutes = older["candles"] + minutes
    return daily["candles"], minutes


def python_filters(daily: list[dict[str, Any]], minutes: list[dict[str, Any]],
                   as_of: int) -> dict[str, float] | None:
    """``CRITERIA`` computed in Python on one symbol's candles as of ``as_of``: its values if it passes, else
    None. The last day: the minutes opening in the 1,440 minutes before ``as_of`` (a 24/7 market)."""
    import talib

    day = [c["quote_volume"] for c in minutes if as_of - 1440 * MINUTE <= c["open_time"] < as_of]
    if not day or len(daily) < 51:
        return None
    volume = float(sum(day))
    closes = np.array([c["close"] for c in daily], dtype=float)
    price = float(closes[-1])
    rsi = float(talib.RSI(closes[-250:], 14)[-1])
    sma = float(closes[-50:].mean())
    volatility = float(np.std(np.diff(np.log(closes[-21:])), ddof=1) * math.sqrt(365.25) * 100)
    low, high = CRITERIA["price_range"]
    if volume >= CRITERIA["min_volume"] and low <= price <= high and rsi < 70 and price > sma and volatility < 100:
        return {"quote_volume": volume, "price": price, "rsi": rsi, "sma": sma, "volatility": volatility}
    return None


async def python_scan(endpoint: str, symbols: list[str], as_of: int, inflight: int = 8) -> list[str]:
    from clients import AsyncClient

    gate = asyncio.Semaphore(inflight)
    async with AsyncClient(endpoint, timeout_ms=30_000, retries=0) as client:

        async def one(symbol: str) -> tuple[str, dict[str, float] | None]:
            async with gate:
                daily, minutes = await _history(client, symbol)
            return symbol, python_filters(daily, minutes, as_of)

        found = [(s, v) for s, v in await asyncio.gather(*(one(s) for s in symbols)) if v is not None]
    found.sort(key=lambda item: (-item[1]["quote_volume"], item[0]))
    return [s for s, _ in found[:CRITERIA["limit"]]]


def baseline(endpoint: str, symbols: list[str], as_of: int, rounds: int) -> tuple[list[float], list[str]]:
    samples, page = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        page = asyncio.run(python_scan(endpoint, symbols, as_of))
        samples.append((time.perf_counter() - started) * 1000)
    return samples, page


def scan_clock(clock: str) -> int:
    """The time the store is seeded up to and scanned as of (see the module's docstring)."""
    from tacore.store.klines import partition_span_ms

    now = int(time.time() * 1000)
    span = partition_span_ms("1m")
    return now if clock == "now" else now - now % span - MINUTE


def run(*, symbols: int = 500, rounds: int = 200, baseline_rounds: int = 3, clock: str = "worst") -> dict[str, Any]:
    """Seed, serve, measure both ways in the same run; the figures as a dict."""
    from tacore.store.klines import partition_span_ms

    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        now = scan_clock(clock)
        started = time.monotonic()
        subprocess.run([sys.executable, __file__, "--seed", str(data_dir), "--symbols", str(symbols),
                        "--now", str(now)], check=True, stdout=subprocess.DEVNULL)
        seeded_s = time.monotonic() - started
        service = Service(workdir, data_dir)
        try:
            service.wait_ready()
            cpu_before = service.cpu_s()
            # as of the seeding's clock, so the last day is the day of minutes seeded however long the run takes
            scan_ms, reply = scan_through_broker(service.endpoint, rounds, now)
            cpu_after = service.cpu_s()
            base_ms, base_page = baseline(service.endpoint, symbol_names(symbols), now, baseline_rounds)
        finally:
            service.stop()
    scan_page = [r["symbol"] for r in reply["results"]]
    scan_p, base_p = percentiles(scan_ms), percentiles(base_ms)
    return {
        "case": "scan.market", "symbols": symbols, "candles": reply["candles"], "seeded_s": round(seeded_s, 1),
        "clock": clock,
        # the share of the day's 1m candles in the newest partition, the one FINAL merges at read time
        "newest_partition_share": round((now % partition_span_ms("1m") // MINUTE + 1) / 1440, 3),
        "criteria": CRITERIA, "matched": reply["matched"], "filters": [(f["source"], f["dropped"])
                                                                       for f in reply["filters"]],
        "same_page_as_baseline": scan_page == base_page,
        "scan_ms": scan_p, "query_ms_in_agent": reply["query_ms"], "baseline_ms": base_p,
        # CPU per scan (warm-up calls included): on a shared machine it moves far less with the load than p50
        **{f"{name}_cpu_ms_per_scan": round((cpu_after[name] - cpu_before[name]) * 1000 / (rounds + 5), 1)
           for name in cpu_after},
        "ratio_p50": round(base_p["p50"] / scan_p["p50"], 1),
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "targets": {"scan_p50_ms": 50, "ratio": 20},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--baseline-rounds", type=int, default=3)
    parser.add_argument("--clock", choices=["worst", "now"], default="worst")
    parser.add_argument("--seed", type=Path, help=argparse.SUPPRESS)  # child: seed this data dir and exit
    parser.add_argument("--now", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed is not None:
        print(seed(args.seed, args.symbols, args.now or int(time.time() * 1000)))
        return 0
    figures = run(symbols=args.symbols, rounds=args.rounds, baseline_rounds=args.baseline_rounds,
                  clock=args.clock)
    print(json.dumps(figures, indent=2))
    ok = figures["same_page_as_baseline"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
