"""Benchmark case: ``analyze.stock`` technical on 1,000 candles, through the broker.

Ten symbols with 1,200 hourly candles each are seeded; each call analyses the newest 1,000 of one of them
(rotating, so no call is answered from a warm cache of the previous one). Timed: sequential calls from one
Lazy Pirate client through a real ``tacore broker`` to the data agent's analysis worker. For the breakdown
the seeding child also times the store read alone and read + TA-Lib + verdicts in-process.

    python benchmarks/analytics/analysis_case.py [--requests 300]

Target (issue 12 §7): p50 <= 15 ms through the broker.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run alone, or imported by benchmarks/bench_analytics.py
    sys.path.insert(0, str(ROOT))

from benchmarks.analytics.agent_service import (  # noqa: E402
    AgentService,
    SeedPlan,
    crypto_symbols,
    print_case,
    seed,
    summary,
    timed,
)
from tacore.store.klines import KlineStore  # noqa: E402

TARGET_P50_MS = 15.0
SYMBOLS = crypto_symbols(10)
LIMIT, INTERVAL = 1000, "1h"


def _in_process(store: KlineStore) -> dict[str, Any]:
    from tacore.analytics.candles import load_ohlcv
    from tacore.analytics.technical import technical_analysis

    end = int(time.time() * 1000)
    names = itertools.cycle(SYMBOLS)
    candles = load_ohlcv(store, SYMBOLS[0], INTERVAL, LIMIT, end)
    assert candles.count == LIMIT
    return {
        "read": summary(timed(lambda: load_ohlcv(store, next(names), INTERVAL, LIMIT, end), 100, 10)),
        "indicators": summary(timed(lambda: technical_analysis(candles, requested=LIMIT), 100, 10)),
    }


def run(requests: int = 300, warmup: int = 30, workdir: Path | None = None) -> dict[str, Any]:
    """Seed, serve, time; the figures as a dict (``p50_ms``, ``p99_ms``, ``target_p50_ms``, ``passed``...)."""
    with tempfile.TemporaryDirectory(prefix="tacore-analysis-bench-") as tmp:
        base = workdir or Path(tmp)
        data_dir = base / "data"
        seeded = seed(data_dir, SeedPlan([(s, INTERVAL, 1200) for s in SYMBOLS], int(time.time() * 1000)),
                      _in_process)
        service = AgentService(base, data_dir).start()
        try:
            reply = service.call("analyze.stock", {"symbol": SYMBOLS[0], "interval": INTERVAL, "limit": LIMIT})
            assert reply["status"] == "ok" and reply["candles"]["used"] == LIMIT
            names = itertools.cycle(SYMBOLS)
            figures = service.timed_with_cpu(lambda: service.call("analyze.stock", {
                "symbol": next(names), "analysis_type": "technical", "interval": INTERVAL, "limit": LIMIT}),
                requests, warmup)
        finally:
            service.stop()
    return {
        "measure": f"analyze.stock technical, {LIMIT} {INTERVAL} candles, through the broker",
        **figures, "target_p50_ms": TARGET_P50_MS, "passed": figures["p50_ms"] <= TARGET_P50_MS,
        "store_read_p50_ms": seeded["read"]["p50_ms"], "indicators_p50_ms": seeded["indicators"]["p50_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args(argv)
    result = run(args.requests, args.warmup)
    print_case("analysis", result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
