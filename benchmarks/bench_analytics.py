"""Analytics figures (issue 12, section 7), each beside the baseline the issue names, measured in the same run.

Sections, chosen with ``--section NAME`` (repeatable; all by default):

- ``market_data``: ``get.market_data`` for 4 symbols on a cache hit, handler time at the worker (the
  registered handler invoked as the worker runtime invokes it: params validation, cache read, reply),
  p50/p99, with the in-memory cache and with Redis; beside today's (pre-issue-12) implementation, kept
  below as ``baseline_market_data``: the cache read plus one store query per symbol for the 1h candle 24 h
  back. Also the miss path (the store read of the 4 symbols) for reference. Target: p50 <= 1 ms.
- ``scan``: ``scan.market`` over ``--scan-symbols`` (500) symbols, each a year of 1d and a day of 1m candles,
  through a real broker and data agent, p50/p99 beside the baseline the issue names, measured in the same
  run: the same filters computed in Python over ``kline.history`` calls through the broker; the ratio of
  the p50s (``benchmarks/analytics/scan_case.py``). Targets: p50 <= 50 ms, ratio >= 20x.
- ``risk``: ``evaluate.risk`` on 50 positions (30 US + 20 crypto, SPY benchmark) x a year of 1d candles,
  through the broker, with the data agent's CPU per call (``risk_case.py``). Target: p50 <= 30 ms.
- ``analyze``: ``analyze.stock`` technical on 1,000 1h candles through the broker (``analysis_case.py``).
  Target: p50 <= 15 ms.

A runner takes the parsed arguments and returns ``Row``s (printed in the table) or a dict of figures
(printed as JSON), saved alike by ``--json``. Every section prints the machine's load average beside it.

Run: ``python benchmarks/bench_analytics.py [--section scan] [--calls 2000] [--json out.json]``.
Candles come from the exchange simulator's market (pure functions of symbol and time) into an embedded
chDB store in a temporary directory; Redis is the one at ``--redis-url`` (keys under a unique prefix,
removed after).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tacore.exchange_sim.market import Market
from tacore.exchange_sim.payloads import rest_row as sim_rest_row
from tacore.intervals import INTERVAL_MS
from tacore.markets import load_markets
from tacore.store.klines import KlineRow, KlineStore, version_of
from tacore.store.market_rows import market_rows
from tacore.store.price_cache import MemoryPriceCache, PriceCache, RedisPriceCache
from workers.ingest.market_view import MarketView
from workers.ingest.normalise import rest_row
from workers.ingest.writer import BatchWriter
from workers.methods import market as market_methods
from workers.registry import CallContext, MethodRegistry

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass
class Row:
    section: str
    case: str
    p50_ms: float
    p99_ms: float
    calls: int
    target: str = ""
    baseline: str = ""  # the case this row is compared with
    vs_baseline: str = ""  # e.g. "42.0x faster"


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = statistics.median(ordered) / 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
    return round(p50, 4), round(p99, 4)


def timed(call: Callable[[], Any], calls: int, warmup: int = 20) -> tuple[float, float]:
    """p50/p99 in ms of ``calls`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - started)
    return percentiles(samples)


# -- market_data -------------------------------------------------------------------------------------------
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
#: candles per interval stored for each symbol: 5m covers the 24 h window, 1h the baseline's reference
DEPTH = {"1m": 120, "5m": 400, "1h": 48, "1d": 5}


def fill_store(store: KlineStore, now_ms: int) -> dict[tuple[str, str], KlineRow]:
    """The simulator's candles up to ``now_ms`` (closed) plus each stream's running one; returns those."""
    market = Market(seed=0)
    running: dict[tuple[str, str], KlineRow] = {}
    for symbol in SYMBOLS:
        for interval, depth in DEPTH.items():
            step = INTERVAL_MS[interval]
            current = now_ms - now_ms % step
            closed = market.closed_range(symbol, interval, current - depth * step, depth)
            store.insert([rest_row(symbol, interval, sim_rest_row(c), closed=True) for c in closed])
            live = rest_row(symbol, interval, sim_rest_row(market.open_candle(symbol, interval, now_ms)),
                            closed=False)
            running[(symbol, interval)] = live._replace(event_time=now_ms, version=version_of(False, now_ms))
    return running


def warm_cache(store: KlineStore, cache: PriceCache, running: dict[tuple[str, str], KlineRow]) -> None:
    """Through the real writer: tickers seeded from the store, the running candles pushed with them."""
    writer = BatchWriter(store, cache, flush_s=0.02)
    _, ticker_rows = market_rows(store, None, latest=())
    writer.seed_tickers([row for rows in ticker_rows.values() for row in rows])
    for row in running.values():
        writer.submit(row)
    writer.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        snaps = cache.get_many(SYMBOLS)
        if all(s is not None and s.ticker is not None and s.ticker.ref_price is not None for s in snaps.values()):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError("the cache did not get its 24 h figures")
    writer.stop()


def baseline_market_data(cache: PriceCache, store: KlineStore, symbols: list[str]) -> dict[str, Any]:
    """Today's implementation before issue 12, kept callable for this benchmark: per symbol the cached
    snapshot, then the 1h candle running 24 h before the last event read from the store."""
    data = {}
    for symbol in symbols:
        snap = cache.get(symbol)
        if snap is None:
            data[symbol] = {"symbol": symbol, "status": "no_data"}
            continue
        ref_time = snap.event_time - DAY_MS
        ref = store.candle_at(symbol, "1h", ref_time - ref_time % HOUR_MS)
        change = pct = None
        if ref is not None and ref["open"]:
            change = snap.price - float(ref["open"])
            pct = change / float(ref["open"]) * 100.0
        keys = ("open_time", "open", "high", "low", "close", "volume", "closed")
        c1m, c1d = snap.candles.get("1m"), snap.candles.get("1d")
        data[symbol] = {"symbol": symbol, "status": "ok", "price": snap.price, "event_time": snap.event_time,
                        "candle_1m": c1m and {k: c1m[k] for k in keys}, "candle_1d": c1d and {k: c1d[k] for k in keys},
                        "change_24h": change, "change_24h_pct": pct, "source": "cache"}
    return {"symbols": data, "count": len(data), "no_data": [s for s, e in data.items() if e["status"] == "no_data"]}


def _market_data_case(args: argparse.Namespace, kind: str, store: KlineStore, cache: PriceCache,
                      view: MarketView) -> list[Row]:
    registry = MethodRegistry()
    registry.include(market_methods.build_registry(view))
    spec = registry.get("get.market_data")
    assert spec is not None
    ctx = CallContext("bench", "get.market_data", "bench-worker")
    params = {"symbols": SYMBOLS}
    reply = spec.invoke(params, ctx)
    if not all(e["source"] == "cache" and e["change_24h"] is not None for e in reply["symbols"].values()):
        raise RuntimeError(f"not a hit with figures: {reply}")
    old = baseline_market_data(cache, store, SYMBOLS)
    if not all(e["change_24h"] is not None for e in old["symbols"].values()):
        raise RuntimeError("the baseline found no 1h reference candle")
    base50, base99 = timed(lambda: baseline_market_data(cache, store, SYMBOLS), args.baseline_calls, 5)
    new50, new99 = timed(lambda: spec.invoke(params, ctx), args.calls)
    miss = timed(lambda: view.stored_snapshots(SYMBOLS), args.baseline_calls, 3)
    baseline_case = f"today: cache + a store query per symbol ({kind})"
    return [Row("market_data", baseline_case, base50, base99, args.baseline_calls),
            Row("market_data", f"4 symbols, cache hit ({kind})", new50, new99, args.calls, "p50 <= 1 ms",
                baseline_case, f"{base50 / new50:.1f}x faster"),
            Row("market_data", f"4 symbols, miss: the store read ({kind})", *miss, args.baseline_calls, "reference")]


def bench_market_data(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    now_ms = int(time.time() * 1000)
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        store = KlineStore(f"chdb://{tmp}/klines")
        store.open()
        running = fill_store(store, now_ms)
        markets = load_markets(None)
        caches: list[tuple[str, PriceCache]] = [("memory", MemoryPriceCache(3600))]
        if not args.no_redis:
            caches.append(("redis", RedisPriceCache(args.redis_url, 3600, prefix=f"bench:{uuid.uuid4().hex}:")))
        try:
            for kind, cache in caches:
                warm_cache(store, cache, running)
                rows.extend(_market_data_case(args, kind, store, cache, MarketView(store, cache, markets, 100,
                                                                                   lambda: now_ms)))
        finally:
            for _, cache in caches:
                if isinstance(cache, RedisPriceCache):
                    cache.delete_all()
                cache.close()
            store.close()
    return rows


Result = list[Row] | dict[str, Any]


def _case(module: str) -> Any:
    """A case module of ``benchmarks/analytics/`` (imported when its section runs: each seeds its own store)."""
    return importlib.import_module(f"benchmarks.analytics.{module}")


def _with_load(figures: dict[str, Any]) -> dict[str, Any]:
    """The machine's load beside a section's figures (the 2 vCPUs are shared; the figures move with it)."""
    return {**figures, "load_average_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}


def bench_scan(args: argparse.Namespace) -> dict[str, Any]:
    load = [round(x, 2) for x in os.getloadavg()]
    figures = _case("scan_case").run(symbols=args.scan_symbols, rounds=args.scan_rounds,
                                     baseline_rounds=args.scan_baseline_rounds)
    return _with_load({**figures, "load_average_before": load})


def bench_risk(args: argparse.Namespace) -> dict[str, Any]:
    load = [round(x, 2) for x in os.getloadavg()]
    return _with_load({**_case("risk_case").run(args.risk_requests), "load_average_before": load})


def bench_analyze(args: argparse.Namespace) -> dict[str, Any]:
    load = [round(x, 2) for x in os.getloadavg()]
    return _with_load({**_case("analysis_case").run(args.analyze_requests), "load_average_before": load})


#: section name -> runner
SECTIONS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "market_data": bench_market_data,
    "scan": bench_scan,
    "risk": bench_risk,
    "analyze": bench_analyze,
}


def print_rows(rows: list[Row]) -> None:
    header = f"{'section':<12} {'case':<52} {'p50 ms':>9} {'p99 ms':>9} {'calls':>6}  {'target':<14} vs baseline"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.section:<12} {r.case:<52} {r.p50_ms:>9.3f} {r.p99_ms:>9.3f} {r.calls:>6}  {r.target:<14} "
              f"{r.vs_baseline}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS), help="repeatable; default: all")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls of a fast case")
    parser.add_argument("--baseline-calls", type=int, default=200, help="timed calls of a slow case")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true", help="memory cache only")
    parser.add_argument("--scan-symbols", type=int, default=500, help="scan: symbols seeded")
    parser.add_argument("--scan-rounds", type=int, default=200, help="scan: timed scans")
    parser.add_argument("--scan-baseline-rounds", type=int, default=3, help="scan: timed Python baselines")
    parser.add_argument("--risk-requests", type=int, default=200, help="risk: timed calls")
    parser.add_argument("--analyze-requests", type=int, default=300, help="analyze: timed calls")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    figures: dict[str, Any] = {}
    for name in args.section or list(SECTIONS):
        result = SECTIONS[name](args)
        if isinstance(result, dict):
            figures[name] = result
        else:
            rows.extend(result)
    if rows:
        print_rows(rows)
    for name, result in figures.items():
        print(f"\n{name}:\n{json.dumps(result, indent=2)}")
    if args.json:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], **figures}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
