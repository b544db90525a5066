"""kill -9 of the whole service (supervisor, broker, workers, order process) under a stream of orders;
after a restart, retrying every request_id leaves exactly one order per id, with fills, positions and
cash that agree."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import zmq
from order_support import CandleFeed, call, wait_for_price
from sqlalchemy import create_engine, select

from tacore.trading.ledger.tables import balances, fills, orders, positions
from tests.support.processes import TACoreProcess, kill_9_service

D = Decimal
IN_FLIGHT = 16


def _stream(tacore: TACoreProcess, sent: dict[str, dict[str, Any]], answered: dict[str, dict[str, Any]],
            stop: threading.Event) -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(tacore.frontend)
    n = 0
    try:
        while not stop.is_set():
            while len(sent) - len(answered) < IN_FLIGHT and not stop.is_set():
                n += 1
                rid = f"kill-{n:05d}"
                params: dict[str, Any] = {"symbol": "BTCUSDT", "action": "buy", "quantity": "1"}
                if n % 5 == 0:
                    params = {"symbol": "BTCUSDT", "action": "sell", "quantity": "1", "order_type": "limit",
                              "price": "100", "time_in_force": "gtc"}
                elif n % 7 == 0:
                    params = {"symbol": "BTCUSDT", "action": "buy", "quantity": "2", "order_type": "limit",
                              "price": "90", "time_in_force": "gtc"}
                sent[rid] = params
                sock.send_multipart([b"", json.dumps({"request_id": rid, "method": "execute.order",
                                                      "params": params, "timeout_ms": 10_000}).encode()])
            if sock.poll(50):
                reply = json.loads(sock.recv_multipart()[-1])
                answered[reply["request_id"]] = reply
    finally:
        sock.close()


def _retry(tacore: TACoreProcess, rid: str, params: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        reply = call(tacore, "execute.order", params, request_id=rid)
        if reply["status"] == "success" or not reply["error"]["retryable"] or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)  # IN_PROGRESS (a first run still open) or UNAVAILABLE: ask again


def test_kill_9_of_everything_under_a_stream_then_retrying_every_request_id_leaves_one_order_each(
        order_service: Callable[..., tuple[TACoreProcess, CandleFeed]]) -> None:
    tacore, feed = order_service()
    feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.0)
    wait_for_price(tacore, "BTCUSDT")
    sent: dict[str, dict[str, Any]] = {}
    answered: dict[str, dict[str, Any]] = {}
    stop = threading.Event()
    streamer = threading.Thread(target=_stream, args=(tacore, sent, answered, stop), daemon=True)
    streamer.start()
    deadline = time.monotonic() + 30
    while len(answered) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tacore.proc is not None
    kill_9_service(tacore.proc.pid)  # every process, none told, orders in flight
    tacore.proc.wait(10)
    stop.set()
    streamer.join(5)
    acknowledged = {rid: r["data"]["id"] for rid, r in answered.items() if r["status"] == "success"}
    assert len(acknowledged) >= 100 and len(sent) > len(acknowledged), (len(sent), len(acknowledged))

    before = _ledger_coids(tacore)
    print(f"sent {len(sent)}, acknowledged {len(acknowledged)}, in the ledger at the kill {len(before)}, "
          f"of them unacknowledged {len(before - set(acknowledged))}")
    tacore.start()
    tacore.wait_healthy(workers=2, timeout=60)
    wait_for_price(tacore, "BTCUSDT")
    feed.candle("BTCUSDT", 99.0, 99.5, 89.0, 95.0, open_ms=feed.next_minute())  # fills resting limits
    final = {}
    for rid, params in sent.items():
        reply = _retry(tacore, rid, params)
        assert reply["status"] == "success", (rid, reply)
        final[rid] = reply["data"]
        assert final[rid]["client_order_id"] == rid
        if rid in acknowledged:  # an acknowledged order survived: the same one
            assert final[rid]["id"] == acknowledged[rid]

    db = create_engine(f"sqlite:///{tacore.workdir / 'data' / 'orders.db'}")
    try:
        with db.connect() as conn:
            rows = conn.execute(select(orders).where(orders.c.account == "paper")).mappings().all()
            fill_rows = conn.execute(select(fills).where(fills.c.account == "paper")).mappings().all()
            position = conn.execute(select(positions).where(positions.c.account == "paper")).mappings().one()
            cash = conn.execute(select(balances).where(balances.c.account == "paper")).mappings().one()
    finally:
        db.dispose()
    by_coid: dict[str, list[str]] = {}
    for row in rows:
        by_coid.setdefault(row["client_order_id"], []).append(row["id"])
    assert sorted(by_coid) == sorted(sent) and all(len(ids) == 1 for ids in by_coid.values())
    assert {rid: ids[0] for rid, ids in by_coid.items()} == {rid: o["id"] for rid, o in final.items()}
    filled: dict[str, Decimal] = {}
    net = D(0)
    for f in fill_rows:
        qty = D(f["qty"])
        filled[f["order_id"]] = filled.get(f["order_id"], D(0)) + qty
        net += qty if f["side"] == "buy" else -qty
    for row in rows:
        assert filled.get(row["id"], D(0)) == D(row["filled_qty"])
    assert D(position["qty"]) == net
    assert D(cash["total"]) + D(position["cost_basis"]) == \
        D(cash["deposited"]) - D(position["fees"]) + D(position["realized_pnl"])
    open_buys = sum((D(r["reserved"]) for r in rows
                     if r["side"] == "buy" and r["status"] in ("new", "partially_filled")), D(0))
    assert D(cash["reserved"]) == open_buys


def _ledger_coids(tacore: TACoreProcess) -> set[str]:
    db = create_engine(f"sqlite:///{tacore.workdir / 'data' / 'orders.db'}")
    try:
        with db.connect() as conn:
            return set(conn.execute(select(orders.c.client_order_id).where(orders.c.account == "paper")).scalars())
    finally:
        db.dispose()
