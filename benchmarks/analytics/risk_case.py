"""Benchmark case: ``evaluate.risk`` on a book of 50 positions with a year of daily candles, through the broker.

The book mixes markets (30 US stocks on NYSE sessions, 20 crypto pairs every day; SPY as benchmark), so
every call runs the harder as-of alignment. Timed: sequential calls from one Lazy Pirate client through a
real ``tacore broker`` to a real ``tacore data-agent`` on the seeded chDB directory. For the breakdown the
seeding child also times ``evaluate_risk`` in-process on the same store (store query + math, no broker).

    python benchmarks/analytics/risk_case.py [--requests 200]

Target (issue 12 §7): p50 <= 30 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from decimal import Decimal
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
    us_symbols,
)
from tacore.store.klines import KlineStore  # noqa: E402

TARGET_P50_MS = 30.0
US, CRYPTO = 30, 20


def book() -> dict[str, str]:
    """Quantities as Decimal strings, as a client would send them."""
    symbols = [*us_symbols(US), *crypto_symbols(CRYPTO)]
    return {symbol: str(Decimal(10 + i)) for i, symbol in enumerate(symbols)}


def _in_process(store: KlineStore) -> dict[str, Any]:
    """evaluate_risk on the freshly seeded store, without broker or worker (runs in the seeding child)."""
    from threadpoolctl import threadpool_limits

    from tacore.analytics.risk import Holding, RiskRequest, evaluate_risk
    from tacore.markets import load_markets

    threadpool_limits(1, user_api="blas")  # as the serving process does (workers/methods/risk.py)
    markets = load_markets(None)
    request = RiskRequest([Holding(s, quantity=Decimal(q)) for s, q in book().items()],
                          end_ms=int(time.time() * 1000), benchmark="SPY")
    reply = evaluate_risk(store, markets, request)
    assert reply["status"] == "ok", reply.get("insufficient_history")
    return {"in_process": summary(timed(lambda: evaluate_risk(store, markets, request), 100, 10))}


def run(requests: int = 200, warmup: int = 20, workdir: Path | None = None) -> dict[str, Any]:
    """Seed, serve, time; the figures as a dict (``p50_ms``, ``p99_ms``, ``target_p50_ms``, ``passed``...)."""
    with tempfile.TemporaryDirectory(prefix="tacore-risk-bench-") as tmp:
        base = workdir or Path(tmp)
        data_dir = base / "data"
        series = [(s, "1d", 260) for s in [*us_symbols(US), "SPY"]] + [(s, "1d", 370) for s in crypto_symbols(CRYPTO)]
        seeded = seed(data_dir, SeedPlan(series, int(time.time() * 1000)), _in_process)
        service = AgentService(base, data_dir).start()
        try:
            params = {"portfolio": book(), "benchmark": "SPY"}
            reply = service.call("evaluate.risk", params)
            assert reply["status"] == "ok" and len(reply["positions"]) == US + CRYPTO
            figures = service.timed_with_cpu(lambda: service.call("evaluate.risk", params), requests, warmup)
        finally:
            service.stop()
    return {
        "measure": f"evaluate.risk, {US + CRYPTO} positions ({US} US + {CRYPTO} crypto) x 1 year of 1d candles, "
                   "through the broker",
        **figures, "target_p50_ms": TARGET_P50_MS, "passed": figures["p50_ms"] <= TARGET_P50_MS,
        "candles_used": reply["lookback"]["candles_used"], "rows_seeded": seeded["rows"],
        "in_process_p50_ms": seeded["in_process"]["p50_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    result = run(args.requests, args.warmup)
    print_case("risk", result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
