"""Orders on the Binance venue through a real ``tacore serve`` (broker, order process, ledger) against
TACore's exchange simulator speaking Binance's spot API: ``venue: binance`` picks the account, the
exchange sees TACore's client order id as ``newClientOrderId``, refusals come back as rejected orders
with Binance's code, a resting limit filled at the exchange is recorded while nobody calls, and a
kill -9 between sending an order and recording its answer is reconciled at start-up from the exchange
without a second order. The key pair never reaches a log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq
from order_support import call, data
from sqlalchemy import create_engine, select

from tacore.exchange_sim import ExchangeSimulator, SimConfig
from tacore.trading.ledger.tables import fills, orders
from tests.support.processes import ROOT, TACoreProcess, wait_until

sys.path.insert(0, str(ROOT / "tests" / "integration" / "trading"))
from binance_helpers import SimControl

D = Decimal
Start = Callable[..., TACoreProcess]


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(SimConfig(alpaca=False, clock_speed=1.0, seed=11)) as running:
        yield running


@pytest.fixture
def control(sim: ExchangeSimulator) -> Iterator[SimControl]:
    ctl = SimControl(sim.rest_url)
    yield ctl
    ctl.reset()


@pytest.fixture
def keys(control: SimControl) -> tuple[str, str]:
    return control.add_account({"USDT": "100000", "BTC": "1"})


@pytest.fixture
def binance_service(tacore_factory: Callable[..., TACoreProcess], tmp_path: Path, sim: ExchangeSimulator,
                    keys: tuple[str, str]) -> Start:
    """``start()``: the service (no data agent, no sidecar) with a ``paper`` account (the default) and a
    ``live`` account on venue binance, the simulator as EXCHANGE_REST_URL and the key pair in the
    environment."""

    def start() -> TACoreProcess:
        raw = yaml.safe_load((ROOT / "config/trading_config.yaml").read_text())
        raw["default_account"] = "paper"
        raw["accounts"] = {"paper": {"venue": "paper", "balances": {"USDT": "1000"}},
                           "live": {"venue": "binance", "balances": {"USDT": "100000"},
                                    "options": {"recv_window_ms": 5000, "timeout_s": 10}}}
        config = tmp_path / "trading.yaml"
        config.write_text(yaml.safe_dump(raw))
        tacore = tacore_factory(TRADING_CONFIG=str(config), EXCHANGE_REST_URL=sim.rest_url,
                                BINANCE_API_KEY=keys[0], BINANCE_API_SECRET=keys[1], ORDERS_REMOTE_POLL_MS="300")
        tacore.wait_healthy(workers=2, timeout=60)
        wait_until(lambda: call(tacore, "order.list", {})["status"] == "success", 60, "the order process",
                   interval=0.3)
        return tacore

    return start


def _ledger(tacore: TACoreProcess) -> tuple[list[Any], list[Any]]:
    db = create_engine(f"sqlite:///{tacore.workdir / 'data' / 'orders.db'}")
    try:
        with db.connect() as conn:
            rows = conn.execute(select(orders).where(orders.c.account == "live")).mappings().all()
            fill_rows = conn.execute(select(fills).where(fills.c.account == "live")).mappings().all()
            return list(rows), list(fill_rows)
    finally:
        db.dispose()


def _kill_9_everything(tacore: TACoreProcess) -> None:
    """SIGKILL the order process first (it is between sending and recording), then every other process of
    the service. Its children leave the supervisor's process group (a Ctrl-C reaches only the supervisor)
    and get SIGTERM when it dies, so killing the group would let them stop gracefully."""
    assert tacore.proc is not None
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    family, frontier = [], [tacore.proc.pid]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        family += children
        frontier = children

    def title(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return ""

    family.sort(key=lambda pid: "tacore: orders" not in title(pid))
    assert family and "tacore: orders" in title(family[0]), [title(pid) for pid in family]
    for pid in [*family, tacore.proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    tacore.proc.wait(10)


def _logged(tacore: TACoreProcess) -> list[str]:
    """The service's output and every log file it wrote."""
    return [tacore.output()] + [p.read_text(errors="replace") for p in (tacore.workdir / "logs").rglob("*")
                                if p.is_file()]


def _assert_no_secret_logged(tacore: TACoreProcess, keys: tuple[str, str]) -> None:
    texts = _logged(tacore)
    assert any("binance venue for account live" in t for t in texts), "the venue's start was not logged"
    for text in texts:
        assert keys[0] not in text and keys[1] not in text


def test_orders_go_to_binance_with_tacore_s_client_order_id_and_refusals_come_back_with_binance_s_code(
        binance_service: Start, sim: ExchangeSimulator, control: SimControl, keys: tuple[str, str]) -> None:
    tacore = binance_service()
    order = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01",
                                                "venue": "binance"}, request_id="bn-market-1"))
    assert (order["status"], order["filled_qty"], order["client_order_id"]) == ("filled", "0.01", "bn-market-1")
    (at_exchange,) = control.orders_with(keys[0], "bn-market-1")
    assert at_exchange["status"] == "FILLED" and at_exchange["side"] == "BUY"
    got = data(call(tacore, "order.get", {"order_id": order["id"], "include_fills": True}))
    (fill,) = got["fills"]
    (trade,) = [t for t in control.truth(keys[0])["trades"] if t["orderId"] == at_exchange["orderId"]]
    assert D(fill["price"]) == D(trade["price"]) and D(fill["qty"]) == D("0.01")
    assert D(fill["fee"]) == D(trade["commission"]) * D(trade["price"])  # 0.1 % of the BTC, priced in USDT
    positions = data(call(tacore, "portfolio.positions", {"account": "live"}))
    assert [(p["symbol"], D(p["qty"])) for p in positions["positions"]] == [("BTCUSDT", D("0.01"))]

    # the same request_id again: the same order, nothing sent
    again = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01",
                                                "venue": "binance"}, request_id="bn-market-1"))
    assert again["id"] == order["id"] and len(control.orders_with(keys[0], "bn-market-1")) == 1

    # -2010: more than the account holds
    short = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "sell", "quantity": "5",
                                                "account": "live"}))
    assert short["status"] == "rejected" and "-2010" in short["reason"] and "insufficient balance" in short["reason"]
    # a filter, checked before sending: nothing reaches the exchange
    tick = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01",
                                               "order_type": "limit", "price": "1000.001", "time_in_force": "gtc",
                                               "venue": "binance"}))
    assert tick["status"] == "rejected" and "PRICE_FILTER" in tick["reason"]
    assert control.orders_with(keys[0], tick["client_order_id"]) == []
    # -1013 from the exchange: a market order's notional (TACore has no price for it here)
    small = data(call(tacore, "execute.order", {"symbol": "ETHUSDT", "action": "buy", "quantity": "0.001",
                                                "venue": "binance"}))
    assert small["status"] == "rejected" and "-1013" in small["reason"] and "NOTIONAL" in small["reason"]
    # a venue the account does not trade on
    wrong = call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01",
                                           "account": "paper", "venue": "binance"})
    assert wrong["status"] == "error" and wrong["error"]["code"] == "INVALID_PARAMS"

    # -1021: the exchange's clock jumps 10 s; the venue resyncs and the order is placed once
    control.skew(10_000)
    skewed = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.001",
                                                 "venue": "binance"}, request_id="bn-skewed"))
    assert skewed["status"] == "filled" and len(control.orders_with(keys[0], "bn-skewed")) == 1
    control.skew(0)

    # 429 with a long Retry-After: rejected as rate limited, nothing placed
    control.fail_next(429, retry_after=30)
    limited = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.001",
                                                  "venue": "binance"}, request_id="bn-limited"))
    assert limited["status"] == "rejected" and "RATE_LIMITED" in limited["reason"] and "30" in limited["reason"]
    assert control.orders_with(keys[0], "bn-limited") == []
    _assert_no_secret_logged(tacore, keys)


def _low_ahead(sim: ExchangeSimulator, symbol: str, *, seconds: int) -> Decimal:
    """The lowest price the simulator's (seeded, known in advance) path trades at from 2 s to ``seconds`` s
    ahead: a buy limit there rests now and fills within ``seconds`` (a random walk left to itself can stay
    above a limit a tick under the price for minutes)."""
    engine = sim.spot.engine
    now = sim.call(engine.clock)
    points = sim.call(lambda: list(engine.path_points(symbol, now + 2_000, now + seconds * 1_000)))
    return D(min(price for _, price, _ in points)).quantize(D("0.01"))


def test_a_resting_limit_is_canceled_at_the_exchange_and_one_filled_there_is_recorded_while_nobody_calls(
        binance_service: Start, sim: ExchangeSimulator, control: SimControl, keys: tuple[str, str]) -> None:
    tacore = binance_service()
    now = sim.call(sim.spot.engine.price, "BTCUSDT")
    far = (now * D("0.7")).quantize(D("0.01"))
    resting = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01",
                                                  "order_type": "limit", "price": str(far), "time_in_force": "gtc",
                                                  "venue": "binance"}))
    assert resting["status"] == "new"
    canceled = data(call(tacore, "order.cancel", {"order_id": resting["id"]}))
    assert canceled["status"] == "canceled"
    assert control.orders_with(keys[0], resting["client_order_id"])[0]["status"] == "CANCELED"

    near = _low_ahead(sim, "BTCUSDT", seconds=20)
    waiting = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.002",
                                                  "order_type": "limit", "price": str(near), "time_in_force": "gtc",
                                                  "venue": "binance"}))
    if waiting["status"] == "new":  # the simulator's path trades at ``near`` within the next 20 s
        wait_until(lambda: control.orders_with(keys[0], waiting["client_order_id"])[0]["status"] == "FILLED", 60,
                   "the exchange to fill the resting limit", interval=0.5)
    recorded = wait_until(lambda: (o := data(call(tacore, "order.get", {"order_id": waiting["id"],
                                                                       "include_fills": True})))["status"]
                          == "filled" and o, 20, "the order process to record the fill", interval=0.3)
    assert D(recorded["filled_avg_price"]) <= near and sum(D(f["qty"]) for f in recorded["fills"]) == D("0.002")
    assert {f["liquidity"] for f in recorded["fills"]} <= {"maker", "taker"}


def test_a_kill_9_between_sending_and_recording_is_reconciled_from_the_exchange_without_a_second_order(
        binance_service: Start, control: SimControl, keys: tuple[str, str]) -> None:
    tacore = binance_service()
    control.reply_fault("delay", 30.0)  # the exchange carries the order out and holds its answer
    params = {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.003", "venue": "binance"}
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(tacore.frontend)
    try:
        sock.send_multipart([b"", json.dumps({"request_id": "bn-killed", "method": "execute.order",
                                              "params": params, "timeout_ms": 60_000}).encode()])
        wait_until(lambda: control.orders_with(keys[0], "bn-killed"), 30, "the order to reach the exchange",
                   interval=0.1)
        assert not sock.poll(200)  # no answer yet: the process waits for the exchange's reply
    finally:
        sock.close()
    _kill_9_everything(tacore)
    rows, _ = _ledger(tacore)
    (row,) = [r for r in rows if r["client_order_id"] == "bn-killed"]
    assert row["status"] == "accepted"  # the intent was durable before the order was sent

    tacore.start()
    tacore.wait_healthy(workers=2, timeout=60)
    reconciled = wait_until(lambda: (r := call(tacore, "order.get", {"account": "live",
                                                                      "client_order_id": "bn-killed"}))
                            ["status"] == "success" and r["data"]["status"] == "filled" and r["data"], 60,
                            "reconciliation to complete the order", interval=0.3)
    assert reconciled["id"] == row["id"] and reconciled["filled_qty"] == "0.003"
    retried = data(call(tacore, "execute.order", params, request_id="bn-killed"))
    assert retried["id"] == row["id"] and retried["status"] == "filled"
    assert len(control.orders_with(keys[0], "bn-killed")) == 1  # never sent twice
    rows, fill_rows = _ledger(tacore)
    assert [r["client_order_id"] for r in rows].count("bn-killed") == 1
    assert sum(D(f["qty"]) for f in fill_rows if f["order_id"] == row["id"]) == D("0.003")
    lines = [line for text in _logged(tacore) for line in text.splitlines() if "reconcil" in line]
    assert any("reconciled 1 open order(s): 1 updated from their venue" in line for line in lines), lines
    _assert_no_secret_logged(tacore, keys)
