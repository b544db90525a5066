"""Order benchmark: paper market orders through the broker to the order process, each durable before its reply.

TACore runs as ``tacore serve --no-data-agent --no-api`` (broker, recorder, one pool worker, the order
process); a DATA_READY publisher of the benchmark's own prices BTCUSDT. Measured:

- sustained throughput: the asyncio client keeps ``--in-flight`` market orders outstanding for
  ``--seconds``; every reply must be a filled order. Afterwards the ledger must hold exactly the orders
  acknowledged (each was durable before its reply);
- latency of one order at a time: a REQ client, ``--latency-orders`` in a row (p50, p99);
- the baseline, in the same run: the same rows per order (the order, its accepted/new/filled events,
  its fill, the position and the cash) written by SQLAlchemy's ORM with one Session and one commit per
  order, into a fresh ledger of the same kind -- what writing each order on its own costs.

With ``--sync both`` each is measured with SQLite's synchronous=NORMAL (the default: a commit survives
any process's death) and FULL (one fsync per commit: also an OS crash or power loss), where group
commit shows most. CPU time of the order process and the broker per order, and the machine's CPU steal,
are printed beside the figures: this machine is shared with other engineers' work.

    python benchmarks/bench_orders.py [--seconds 10] [--in-flight 64] [--latency-orders 2000]
                                      [--baseline-orders 2000] [--sync normal|full|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psutil
import yaml
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_broker import cpu_ticks, free_port, pct  # noqa: E402

from clients import AsyncClient  # noqa: E402

ORDER = {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.001", "order_type": "market"}
MINUTE = 60_000


class Feed:
    """Publishes a closed BTCUSDT candle every 100 ms on the service's EVENTS_PORT (the data agent's job)."""

    def __init__(self, port: int) -> None:
        self.socket: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.PUB)
        self.socket.bind(f"tcp://127.0.0.1:{port}")
        start = int(time.time() * 1000) // MINUTE * MINUTE - MINUTE
        candle = {"symbol": "BTCUSDT", "interval": "1m", "open_time": start, "close_time": start + MINUTE - 1,
                  "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": 1e9, "quote_volume": 1e11,
                  "trades": 1, "taker_buy_base_volume": 0.0, "taker_buy_quote_volume": 0.0, "closed": True}
        self.body = orjson.dumps({"event": "DATA_READY", "symbol": "BTCUSDT", "interval": "1m", "candle": candle,
                                  "ts_event": start + MINUTE - 1, "ts_publish": start + MINUTE})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.socket.send_multipart([b"kline.BTCUSDT.1m", self.body])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.socket.close(0)


class Service:
    def __init__(self, workdir: Path, sync: str) -> None:
        workdir.mkdir(parents=True)
        self.workdir = workdir
        config = yaml.safe_load((ROOT / "config/trading_config.yaml").read_text())
        config["accounts"] = {"paper": {"venue": "paper", "balances": {"USDT": "1000000000"},
                                        "costs": {"taker_fee_bps": "2", "half_spread_bps": "1", "slippage_bps": "2"}}}
        (workdir / "trading.yaml").write_text(yaml.safe_dump(config))
        self.ports = {name: free_port() for name in ("ZMQ_FRONTEND_PORT", "ZMQ_BACKEND_PORT", "EVENTS_PORT",
                                                     "RECORDER_PORT", "API_PORT")}
        env = {**os.environ, **{k: str(v) for k, v in self.ports.items()}, "TACORESERVICE_LOG_LEVEL": "WARNING",
               "DATABASE_PATH": str(workdir / "data" / "tacoreservice.db"), "LOG_DIR": str(workdir / "logs"),
               "DATA_DIR": str(workdir / "data"), "WORKER_COUNT": "1", "TRADING_CONFIG": str(workdir / "trading.yaml"),
               "ORDERS_SQLITE_SYNCHRONOUS": sync}
        self.proc = subprocess.Popen([sys.executable, "-m", "tacore", "serve", "--no-data-agent", "--no-api"],
                                     env=env, cwd=workdir, stdout=subprocess.DEVNULL)
        self.endpoint = f"tcp://127.0.0.1:{self.ports['ZMQ_FRONTEND_PORT']}"
        self.feed = Feed(self.ports["EVENTS_PORT"])
        self._wait_priced()
        self.orders_proc, self.broker_proc = self._children()

    def _wait_priced(self, timeout: float = 90.0) -> None:
        ctx: zmq.Context[Any] = zmq.Context.instance()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock = ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.endpoint)
            sock.send(json.dumps({"request_id": uuid.uuid4().hex, "method": "execute.order", "params": ORDER,
                                  "timeout_ms": 2000}).encode())
            if sock.poll(2500):
                reply = json.loads(sock.recv())
                if reply.get("status") == "success" and reply["data"]["status"] == "filled":
                    sock.close()
                    return
            sock.close()
            time.sleep(0.3)
        raise RuntimeError("the order process never filled an order")

    def _children(self) -> tuple[psutil.Process, psutil.Process]:
        found: dict[str, psutil.Process] = {}
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            title = " ".join(child.cmdline())
            for name in ("orders", "broker"):
                if title.startswith(f"tacore: {name}"):
                    found[name] = child
        return found["orders"], found["broker"]

    def cpu(self) -> tuple[float, float]:
        return tuple(sum(p.cpu_times()[:2]) for p in (self.orders_proc, self.broker_proc))  # type: ignore[return-value]

    def ledger_orders(self) -> int:
        from sqlalchemy import create_engine, func, select

        from tacore.trading.ledger.tables import orders

        engine = create_engine(f"sqlite:///{self.workdir / 'data' / 'orders.db'}")
        try:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(orders)).scalar() or 0)
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.feed.close()


async def _sustained(endpoint: str, seconds: float, in_flight: int) -> tuple[int, list[str]]:
    done = 0
    problems: list[str] = []
    stop_at = time.monotonic() + seconds
    async with AsyncClient(endpoint, timeout_ms=30_000, retries=0) as client:
        async def lane() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                reply = await client.request("execute.order", ORDER)
                if reply["status"] != "success" or reply["data"]["status"] != "filled":
                    problems.append(json.dumps(reply)[:300])
                    return
                done += 1

        await asyncio.gather(*(lane() for _ in range(in_flight)))
    return done, problems


def latency(endpoint: str, orders: int) -> list[float]:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    samples = []
    prefix = uuid.uuid4().hex[:12]
    for i in range(orders + 100):
        body = json.dumps({"request_id": f"{prefix}-{i}", "method": "execute.order", "params": ORDER}).encode()
        t0 = time.perf_counter()
        sock.send(body)
        reply = json.loads(sock.recv())
        elapsed = (time.perf_counter() - t0) * 1000.0
        if reply["status"] != "success" or reply["data"]["status"] != "filled":
            raise RuntimeError(reply)
        if i >= 100:  # warm-up excluded
            samples.append(elapsed)
    sock.close()
    return samples


def baseline(workdir: Path, sync: str, orders: int) -> float:
    """Orders per second writing the same rows with one ORM Session and commit per order."""
    from sqlalchemy.orm import Session, registry

    from tacore.trading.ledger import make_ledger_engine, upgrade_ledger
    from tacore.trading.ledger.tables import balances, fills, order_events, positions
    from tacore.trading.ledger.tables import orders as orders_table

    class OrderRow:
        pass

    class EventRow:
        pass

    class FillRow:
        pass

    class PositionRow:
        pass

    class BalanceRow:
        pass

    mapper = registry()
    for cls, table in ((OrderRow, orders_table), (EventRow, order_events), (FillRow, fills),
                       (PositionRow, positions), (BalanceRow, balances)):
        mapper.map_imperatively(cls, table)
    engine = make_ledger_engine(f"sqlite:///{workdir / 'baseline.db'}", sqlite_synchronous=sync)
    upgrade_ledger(engine)
    price, qty, fee = Decimal("100.03"), Decimal("0.001"), Decimal("0.0000200060")
    with Session(engine) as session:
        session.add(BalanceRow(account="paper", asset="USDT", total=Decimal("1000000000"), reserved=0,  # type: ignore[call-arg]
                               deposited=Decimal("1000000000"), updated_ms=0))
        session.add(PositionRow(account="paper", symbol="BTCUSDT", quote_asset="USDT", qty=0, cost_basis=0,  # type: ignore[call-arg]
                                realized_pnl=0, fees=0, reserved_qty=0, updated_ms=0))
        session.commit()
    started = time.perf_counter()
    for _ in range(orders):
        now = int(time.time() * 1000)
        order_id = str(uuid.uuid4())
        with Session(engine) as session:
            session.add(OrderRow(  # type: ignore[call-arg]
                id=order_id, account="paper", client_order_id=uuid.uuid4().hex, request_id=uuid.uuid4().hex,
                payload_hash="0" * 64, venue="paper", venue_order_id=f"paper-{order_id}", symbol="BTCUSDT",
                asset_class="crypto", quote_asset="USDT", side="buy", type="market", time_in_force="day", qty=qty,
                limit_price=None, stop_price=None, status="filled", filled_qty=qty, filled_notional=qty * price,
                filled_avg_price=price, fees=fee, reserved=0, triggered=False, reason=None, created_ms=now,
                updated_ms=now, submitted_ms=now, filled_ms=now, canceled_ms=None, expired_ms=None, rejected_ms=None,
                expires_ms=None, market_ms=now, event_seq=3))
            session.flush()
            for seq, kind in enumerate(("accepted", "new", "filled"), start=1):
                session.add(EventRow(order_id=order_id, seq=seq, kind=kind, status=kind,  # type: ignore[call-arg]
                                     filled_qty=qty if kind == "filled" else 0, ts_ms=now, detail=None))
            session.add(FillRow(id=str(uuid.uuid4()), order_id=order_id, venue_fill_id=uuid.uuid4().hex,  # type: ignore[call-arg]
                                account="paper", symbol="BTCUSDT", side="buy", qty=qty, price=price, fee=fee,
                                fee_asset="USDT", liquidity="taker", ts_ms=now))
            position = session.get(PositionRow, ("paper", "BTCUSDT"))
            balance = session.get(BalanceRow, ("paper", "USDT"))
            position.qty += qty  # type: ignore[union-attr]
            position.cost_basis += qty * price  # type: ignore[union-attr]
            position.updated_ms = now  # type: ignore[union-attr]
            balance.total -= qty * price + fee  # type: ignore[union-attr]
            balance.updated_ms = now  # type: ignore[union-attr]
            session.commit()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return orders / elapsed


def run(sync: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    (tmp / f"baseline-{sync}").mkdir()
    base = baseline(tmp / f"baseline-{sync}", sync, args.baseline_orders)
    service = Service(tmp / f"tacore-{sync}", sync)
    try:
        before = service.ledger_orders()
        cpu0 = service.cpu()
        t0 = time.perf_counter()
        done, problems = asyncio.run(_sustained(service.endpoint, args.seconds, args.in_flight))
        elapsed = time.perf_counter() - t0
        cpu1 = service.cpu()
        if problems:
            raise RuntimeError(f"an order was not filled: {problems[0]}")
        stored = service.ledger_orders() - before
        samples = latency(service.endpoint, args.latency_orders)
    finally:
        service.stop()
    return {"sync": sync, "throughput": done / elapsed, "orders": done, "stored": stored,
            "orders_cpu_us": (cpu1[0] - cpu0[0]) / max(1, done) * 1e6,
            "broker_cpu_us": (cpu1[1] - cpu0[1]) / max(1, done) * 1e6,
            "p50_ms": pct(samples, 0.50), "p99_ms": pct(samples, 0.99), "baseline": base}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--latency-orders", type=int, default=2000)
    parser.add_argument("--baseline-orders", type=int, default=2000)
    parser.add_argument("--sync", choices=["normal", "full", "both"], default="both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    modes = ["NORMAL", "FULL"] if args.sync == "both" else [args.sync.upper()]
    ticks0 = cpu_ticks()
    load0 = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-orders-") as tmp:
        for sync in modes:
            results.append(run(sync, args, Path(tmp)))
    ticks1 = cpu_ticks()
    steal = (ticks1[1] - ticks0[1]) / max(1, ticks1[0] - ticks0[0])
    print(f"\npaper market orders through the broker, {args.in_flight} in flight for {args.seconds:.0f} s; "
          f"latency {args.latency_orders} one at a time; {os.cpu_count()} CPUs")
    print(f"{'SQLite sync':<12} {'orders/s':>10} {'stored':>8} {'orders us/order':>16} {'broker us/order':>16} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'baseline/s':>11} {'ratio':>7}")
    for r in results:
        ratio = r["throughput"] / r["baseline"] if r["baseline"] else float("nan")
        print(f"{r['sync']:<12} {r['throughput']:>10,.0f} {r['stored']:>8,} {r['orders_cpu_us']:>16.0f} "
              f"{r['broker_cpu_us']:>16.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['baseline']:>11,.0f} "
              f"{ratio:>6.1f}x")
        if r["stored"] != r["orders"]:
            print(f"  !! {r['orders']} orders acknowledged, {r['stored']} in the ledger")
    print(f"targets: >= 1,000 orders/s; p50 <= 2 ms, p99 <= 10 ms. The machine is shared: load average "
          f"{load0:.1f} at the start, CPU steal {steal:.1%} during the run.")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "steal": steal, "load": load0}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
