"""Ingest benchmark: exchange simulator -> data agent -> chDB, against the seed's one INSERT per message.

In one run (each phase with its own simulator, agent and data directory, all real processes):

1. baseline   the seed's way: one WebSocket reader, one ``INSERT`` per message (``asyncio.to_thread``
              per message, as in the seed), for ``--baseline-s``; rows committed per second.
2. throughput the data agent (``tacore data-agent``) fed as fast as the simulator goes (700 streams,
              ``--fast-interval-ms``); kline messages/s received and rows/s written, agent CPU: the peak.
2b. sustained the data agent at 25,000 messages/s offered on a real-time clock (``--sustained-interval-ms``):
              the rate it keeps up with, its CPU and lag; the ">= 20,000 msg/s on one core" target.
3. lag        the simulator on a real-time clock at 3,500 messages/s (700 streams every 200 ms);
              exchange event time -> row committed (readable), p50/p99, agent CPU and memory.
4. long       (``--long``) ``--long-s`` seconds (600 for the issue's run) at 10,000 messages/s:
              agent memory growth after warm-up, lag, CPU.

    python benchmarks/bench_ingest.py [--long]

Targets (issue 3 §7): >= 20,000 msg/s with the agent on <= 1 core, >= 100x the baseline, p99 lag
<= 400 ms at 3,500 msg/s, memory growth < 10 % over 10 minutes at 10,000 msg/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
import websockets

from clients import LazyPirateClient
from tacore.intervals import INTERVALS
from tacore.store.klines import KlineStore
from workers.ingest.normalise import kline_row, stream_name

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def symbols(n: int) -> list[str]:
    return [f"B{i:03d}USDT" for i in range(n)]


@dataclass
class Procs:
    """Processes this benchmark started; stopped by pid, always."""

    items: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, args: list[str], env: dict[str, str], cwd: Path, stdout: Any = None) -> subprocess.Popen[bytes]:
        log = (cwd / f"{len(self.items)}.log").open("ab")
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=stdout or log, stderr=log)
        self.items.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.items):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.items.clear()


def start_sim(procs: Procs, workdir: Path, *, clock_speed: float, interval_ms: float) -> dict[str, str]:
    proc = procs.spawn([PY, "-m", "tacore", "exchange-sim", "--clock-speed", str(clock_speed),
                        "--update-interval-ms", str(interval_ms)], dict(os.environ), workdir, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the simulator did not start")
    urls: dict[str, str] = json.loads(line)
    return urls


class Stack:
    """Broker + simulator + data agent for one phase."""

    def __init__(self, workdir: Path, *, clock_speed: float, interval_ms: float, streams_symbols: int,
                 agent_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.procs = Procs()
        ports = {name: str(free_port()) for name in ("ZMQ_FRONTEND_PORT", "ZMQ_BACKEND_PORT", "EVENTS_PORT",
                                                     "RECORDER_PORT", "API_PORT")}
        self.urls = start_sim(self.procs, workdir, clock_speed=clock_speed, interval_ms=interval_ms)
        self.env = {**os.environ, **ports, "DATA_DIR": str(workdir / "data"), "LOG_DIR": str(workdir / "logs"),
                    "TACORESERVICE_LOG_LEVEL": "WARNING", "EXCHANGE_WS_URL": self.urls["ws_url"],
                    "EXCHANGE_REST_URL": self.urls["rest_url"],
                    "DATA_AGENT_SYMBOLS": json.dumps(symbols(streams_symbols)),
                    "TACORE_INGEST_STALL_S": "5", "TACORE_INGEST_VERIFY_SYMBOLS": "false", **(agent_env or {})}
        self.env.pop("REDIS_URL", None)
        self.procs.spawn([PY, "-m", "tacore", "broker", "--no-request-log"], self.env, workdir)
        self.agent = self.procs.spawn([PY, "-m", "tacore", "data-agent"], self.env, workdir)
        self.client = LazyPirateClient(f"tcp://127.0.0.1:{ports['ZMQ_FRONTEND_PORT']}", timeout_ms=5000, retries=2)
        self.ps = psutil.Process(self.agent.pid)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.client.call("kline.status", {})
        return result

    def wait_flowing(self, streams: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.status()["streams_with_data"] >= streams:
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{streams} streams did not flow within {timeout} s")

    def close(self) -> None:
        self.client.close()
        self.procs.stop_all()


@dataclass
class Window:
    seconds: float
    messages: int
    rows: int
    cpu_s: float
    rss_start: int
    rss_end: int
    rss_peak: int
    lag: dict[str, Any]
    dropped: int
    rss_series: list[tuple[float, int]] = field(default_factory=list)
    insert_ms: dict[str, Any] = field(default_factory=dict)

    @property
    def msg_rate(self) -> float:
        return self.messages / self.seconds

    @property
    def row_rate(self) -> float:
        return self.rows / self.seconds

    @property
    def cores(self) -> float:
        return self.cpu_s / self.seconds


def measure(stack: Stack, seconds: float, *, sample_s: float = 5.0) -> Window:
    before = stack.status()
    cpu0 = sum(stack.ps.cpu_times()[:2])
    rss0 = stack.ps.memory_info().rss
    peak = rss0
    series = [(0.0, rss0)]
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(min(sample_s, max(0.0, seconds - (time.monotonic() - started))))
        rss = stack.ps.memory_info().rss
        series.append((time.monotonic() - started, rss))
        peak = max(peak, rss)
    elapsed = time.monotonic() - started
    after = stack.status()
    counts = [b - a for a, b in zip(before["write_lag_ms"]["counts"], after["write_lag_ms"]["counts"], strict=True)]
    bounds = after["write_lag_ms"]["buckets_ms"]
    lag = {"p50": percentile(bounds, counts, 0.50), "p99": percentile(bounds, counts, 0.99), "samples": sum(counts)}
    return Window(elapsed, after["messages_received"] - before["messages_received"],
                  after["rows_written"] - before["rows_written"], sum(stack.ps.cpu_times()[:2]) - cpu0, rss0,
                  stack.ps.memory_info().rss, peak, lag, after["dropped_rows"], series,
                  after["storage"].get("insert_ms", {}))


def percentile(bounds: list[int], counts: list[int], q: float) -> float | None:
    """Percentile of a bucketed histogram, interpolated linearly inside its bucket."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if seen + count >= rank and count:
            low = bounds[index - 1] if index else 0
            high = bounds[index] if index < len(bounds) else bounds[-1] * 2
            return round(low + (high - low) * (rank - seen) / count, 1)
        seen += count
    return float(bounds[-1])


# -- phase 1: the seed's way ---------------------------------------------------------------------------
async def seed_way(ws_url: str, store: KlineStore, names: list[str], seconds: float) -> tuple[int, int]:
    """One reader; per message ``asyncio.create_task(asyncio.to_thread(insert, [row]))`` as the seed does."""
    committed = 0
    received = 0
    pending: set[asyncio.Task[None]] = set()

    async def insert(row: Any) -> None:
        nonlocal committed
        await asyncio.to_thread(store.insert, [row])
        committed += 1

    url = f"{ws_url}/stream?streams={'/'.join(names)}"
    async with websockets.connect(url, max_size=2**22, ping_interval=None) as ws:
        start = time.monotonic()
        start_committed = 0
        warm = False
        while time.monotonic() - start < seconds + 2.0:
            raw = await asyncio.wait_for(ws.recv(), 5)
            msg = orjson.loads(raw)
            if "data" not in msg:
                continue
            received += 1
            task = asyncio.create_task(insert(kline_row(msg["data"])))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if not warm and time.monotonic() - start >= 2.0:  # 2 s warm-up
                warm, start_committed = True, committed
        for task in pending:
            task.cancel()
    return committed - start_committed, received


def run_baseline(workdir: Path, seconds: float) -> float:
    procs = Procs()
    try:
        urls = start_sim(procs, workdir, clock_speed=60.0, interval_ms=100.0)
        store = KlineStore(f"chdb://{workdir}/baseline/klines")
        store.open()
        names = [stream_name(s, i) for s in symbols(20) for i in INTERVALS]  # 140 streams, 1,400 msg/s
        rows, received = asyncio.run(seed_way(urls["ws_url"], store, names, seconds))
        store.close()
        print(f"  baseline: {received} messages received, {rows} rows committed in {seconds:.0f} s", flush=True)
        return rows / seconds
    finally:
        procs.stop_all()


# -- phases 2-4 -------------------------------------------------------------------------------------
def run_agent_phase(workdir: Path, *, name: str, clock_speed: float, interval_ms: float, warmup_s: float,
                    seconds: float) -> Window:
    stack = Stack(workdir, clock_speed=clock_speed, interval_ms=interval_ms, streams_symbols=100)
    try:
        stack.wait_flowing(700)
        time.sleep(warmup_s)
        window = measure(stack, seconds, sample_s=min(30.0, max(1.0, seconds / 20)))
        print(f"  {name}: {window.msg_rate:,.0f} msg/s, {window.row_rate:,.0f} rows/s, {window.cores:.2f} cores, "
              f"lag p50 {window.lag['p50']} ms p99 {window.lag['p99']} ms, rss {window.rss_start / 2**20:.0f} -> "
              f"{window.rss_end / 2**20:.0f} MiB (peak {window.rss_peak / 2**20:.0f}), dropped {window.dropped}, "
              f"INSERT ms p50/p99/max {window.insert_ms.get('p50')}/{window.insert_ms.get('p99')}/"
              f"{window.insert_ms.get('max')}",
              flush=True)
        if seconds >= 120:
            curve = ", ".join(f"{t:.0f}s {rss / 2**20:.0f}" for t, rss in window.rss_series)
            print(f"  {name} agent RSS (MiB) over the window: {curve}", flush=True)
        return window
    finally:
        stack.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-s", type=float, default=15.0)
    parser.add_argument("--throughput-s", type=float, default=20.0)
    parser.add_argument("--fast-interval-ms", type=float, default=20.0, help="700 streams: 35,000 msg/s offered")
    parser.add_argument("--fast-clock", type=float, default=1.0, help="simulated clock speed of the throughput run")
    parser.add_argument("--sustained-interval-ms", type=float, default=28.0,
                        help="700 streams: 25,000 msg/s offered, the sustained-rate run")
    parser.add_argument("--sustained-s", type=float, default=30.0)
    parser.add_argument("--lag-s", type=float, default=20.0)
    parser.add_argument("--long", action="store_true", help="also the long run at 10,000 msg/s")
    parser.add_argument("--long-s", type=float, default=600.0)
    parser.add_argument("--long-warmup-s", type=float, default=120.0,
                        help="before the long window: chDB's caches fill in the first ~2 minutes")
    parser.add_argument("--only-long", action="store_true", help="skip phases 1-3")
    args = parser.parse_args(argv)

    baseline: float | None = None
    fast = sustained = lag = long = None
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        for sub in ("baseline", "throughput", "sustained", "lag", "long"):
            (root / sub).mkdir()
        if not args.only_long:
            print("phase 1: the seed's one INSERT per message", flush=True)
            baseline = run_baseline(root / "baseline", args.baseline_s)
            print("phase 2: data agent, simulator as fast as it goes", flush=True)
            fast = run_agent_phase(root / "throughput", name="throughput", clock_speed=args.fast_clock,
                                   interval_ms=args.fast_interval_ms, warmup_s=3.0, seconds=args.throughput_s)
            offered = 700 * 1000.0 / args.sustained_interval_ms
            print(f"phase 2b: data agent at {offered:,.0f} msg/s offered, real-time clock", flush=True)
            sustained = run_agent_phase(root / "sustained", name="sustained", clock_speed=1.0,
                                        interval_ms=args.sustained_interval_ms, warmup_s=5.0,
                                        seconds=args.sustained_s)
            print("phase 3: data agent at 3,500 msg/s, real-time clock", flush=True)
            lag = run_agent_phase(root / "lag", name="lag", clock_speed=1.0, interval_ms=200.0, warmup_s=3.0,
                                  seconds=args.lag_s)
        if args.long or args.only_long:
            print(f"phase 4: data agent at 10,000 msg/s, {args.long_warmup_s:.0f} s warm-up, then "
                  f"{args.long_s:.0f} s measured", flush=True)
            long = run_agent_phase(root / "long", name="long", clock_speed=1.0, interval_ms=70.0,
                                   warmup_s=args.long_warmup_s, seconds=args.long_s)

    rows: list[tuple[str, str, str, str]] = []
    if baseline is not None and fast is not None and sustained is not None and lag is not None:
        sustained_ok = sustained.msg_rate >= 20_000 and sustained.cores <= 1.0 and (sustained.lag["p99"] or 1e9) < 1000
        rows += [
            ("baseline (seed: 1 INSERT/msg)", f"{baseline:,.0f} rows/s", "", ""),
            ("agent peak ingest", f"{fast.msg_rate:,.0f} msg/s, {fast.cores:.2f} cores", "", ""),
            ("agent sustained ingest", f"{sustained.msg_rate:,.0f} msg/s, {sustained.cores:.2f} cores",
             ">= 20,000 on <= 1 core", "ok" if sustained_ok else "MISSED"),
            ("sustained lag p50/p99", f"{sustained.lag['p50']} / {sustained.lag['p99']} ms", "", ""),
            ("sustained rows written", f"{sustained.row_rate:,.0f} rows/s, {sustained.dropped} dropped", "", ""),
            ("sustained ratio vs baseline", f"{sustained.row_rate / max(baseline, 1e-9):,.0f}x", ">= 100x",
             "ok" if sustained.row_rate >= 100 * baseline else "MISSED"),
            ("peak ratio vs baseline", f"{fast.row_rate / max(baseline, 1e-9):,.0f}x", "", ""),
            ("lag p50 at 3,500 msg/s", f"{lag.lag['p50']} ms", "", ""),
            ("lag p99 at 3,500 msg/s", f"{lag.lag['p99']} ms", "<= 400",
             "ok" if (lag.lag["p99"] or 1e9) <= 400 else "MISSED"),
            ("rate in the lag run", f"{lag.msg_rate:,.0f} msg/s", "", ""),
            ("agent CPU at 3,500 msg/s", f"{lag.cores:.2f} cores", "", ""),
        ]
    if long is not None:
        growth = (long.rss_end - long.rss_start) / long.rss_start * 100
        rows += [
            ("long run rate", f"{long.msg_rate:,.0f} msg/s over {long.seconds:.0f} s", "10,000", ""),
            ("long run memory growth", f"{growth:+.1f} % ({long.rss_start / 2**20:.0f} -> "
             f"{long.rss_end / 2**20:.0f} MiB)", "< 10 %", "ok" if growth < 10 else "MISSED"),
            ("long run lag p50/p99", f"{long.lag['p50']} / {long.lag['p99']} ms", "", ""),
            ("long run CPU", f"{long.cores:.2f} cores", "<= 1", "ok" if long.cores <= 1 else "MISSED"),
        ]
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'measure':<{width}}  {'result':<34}  {'target':<10}  verdict")
    for name, value, target, verdict in rows:
        print(f"{name:<{width}}  {value:<34}  {target:<10}  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
