"""A hypothesis state machine of the ledger: orders placed under a small pool of client order ids (so
retries and conflicts happen), commits, crashes (a new engine on the database, staged changes gone),
candles and cancels. After every step: one order per client order id, a retry answers the committed
order and another payload is a conflict, the ledger read afresh equals the engine's state, each
order's fills add up to its filled_qty and its events are numbered 1..n, filled_qty within qty and
terminal states final. On SQLite (a file), and on PostgreSQL and MariaDB."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from engine_harness import Harness
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from machine_checks import check_books, check_orders
from sqlalchemy import func, select
from trading_helpers import T0, candle

from tacore.errors import Conflict
from tacore.trading.ledger import Ledger
from tacore.trading.ledger.tables import fills, order_events, orders
from tacore.trading.model import OrderStatus
from tests.support.sql_servers import server_database

D = Decimal
CLIENT_IDS = [f"coid-{i}" for i in range(6)]


class LedgerMachine(RuleBasedStateMachine):
    url = ""

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(self.url, costs={"taker_fee_bps": "5", "maker_fee_bps": "2", "slippage_bps": "3"})
        self._wipe()
        self.h.restart()
        self.price = 100
        self.minute = 1
        self.h.quotes.set("BTCUSDT", "100", ts_ms=T0)
        self.committed: dict[str, tuple[tuple[str, str, str], str]] = {}  # coid -> (payload, order id)
        self.staged: dict[str, tuple[tuple[str, str, str], str]] = {}
        self.seen: dict[str, tuple[OrderStatus, Decimal]] = {}

    def _wipe(self) -> None:
        from tacore.trading.ledger.tables import balances, candle_marks, positions

        with self.h.db.begin() as conn:
            for table in (fills, order_events, orders, positions, balances, candle_marks):
                conn.execute(table.delete())

    def teardown(self) -> None:
        self.h.close()

    @rule(coid=st.sampled_from(CLIENT_IDS), side=st.sampled_from(["buy", "sell"]),
          qty=st.sampled_from(["1", "2"]), kind=st.sampled_from(["market", "limit"]),
          offset=st.integers(min_value=-3, max_value=3))
    def place(self, coid: str, side: str, qty: str, kind: str, offset: int) -> None:
        limit = str(self.price + offset) if kind == "limit" else None
        payload = (side, qty, f"{kind}{limit}")
        known = self.staged.get(coid) or self.committed.get(coid)
        try:
            order = self.h.place(side=side, qty=qty, type=kind, limit=limit, client_order_id=coid, commit=False)
        except Conflict:
            assert known is not None and known[0] != payload
            return
        if known is not None:
            assert known == (payload, order.id), "a retried client order id must answer its order"
        else:
            self.staged[coid] = (payload, order.id)

    @rule()
    def commit(self) -> None:
        self.h.engine.commit()
        self.committed.update(self.staged)
        self.staged.clear()

    @rule()
    def crash(self) -> None:
        """kill -9: what was not committed is gone; a new engine reads the ledger."""
        self.staged.clear()
        self.h.restart()

    @rule(move=st.integers(min_value=-4, max_value=4), spread=st.integers(min_value=0, max_value=4))
    def candle_closes(self, move: int, spread: int) -> None:
        close = max(10, self.price + move)
        high, low = max(self.price, close) + spread, min(self.price, close) - spread
        self.h.now = T0 + (self.minute + 1) * 60_000
        self.h.engine.on_candle(candle(str(self.price), str(high), str(low), str(close), minute=self.minute))
        self.committed.update(self.staged)  # a candle commits what is staged
        self.staged.clear()
        self.minute += 1
        self.price = close

    @precondition(lambda self: self.h.engine.open_count() > 0)
    @rule(pick=st.integers(min_value=0, max_value=20))
    def cancel(self, pick: int) -> None:
        open_orders = self.h.engine.open_orders()
        self.h.engine.cancel(None, open_orders[pick % len(open_orders)].id, None)

    @invariant()
    def ledger_holds(self) -> None:
        """Checked on the database as another reader sees it (nothing here commits what is staged)."""
        engine = self.h.engine
        check_books(engine)
        stored = Ledger(self.h.db)
        everything = check_orders(stored, self.seen)
        by_coid: dict[str, list[str]] = {}
        for order in everything:
            by_coid.setdefault(order.client_order_id, []).append(order.id)
        assert all(len(ids) == 1 for ids in by_coid.values())
        assert {c: ids[0] for c, ids in by_coid.items()} == {c: oid for c, (_, oid) in self.committed.items()}
        if not engine.ledger.pending and not engine.portfolio.dirty_balances and not engine.portfolio.dirty_positions:
            fresh = stored.load_portfolio()
            assert {k: (b.total, b.reserved) for k, b in fresh.balances.items()} == \
                {k: (b.total, b.reserved) for k, b in engine.portfolio.balances.items()}
            assert {k: (p.qty, p.cost_basis, p.reserved_qty) for k, p in fresh.positions.items()} == \
                {k: (p.qty, p.cost_basis, p.reserved_qty) for k, p in engine.portfolio.positions.items()}
        with self.h.db.connect() as conn:
            filled: dict[str, Decimal] = {}
            for order_id, qty in conn.execute(select(fills.c.order_id, fills.c.qty)):  # summed exactly, here
                filled[order_id] = filled.get(order_id, D(0)) + qty
            for order in everything:
                assert filled.get(order.id, D(0)) == order.filled_qty
            seqs = conn.execute(select(order_events.c.order_id, func.count(), func.max(order_events.c.seq))
                                .group_by(order_events.c.order_id)).all()
            assert all(count == top for _, count, top in seqs)


def _run(url: str, examples: int) -> None:
    machine = type("Machine", (LedgerMachine,), {"url": url})
    machine.TestCase.settings = settings(max_examples=examples, stateful_step_count=25, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
    machine.TestCase("runTest").runTest()


def test_ledger_machine_on_sqlite() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run(f"sqlite:///{Path(tmp) / 'orders.db'}", 40)


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from server_database(request.param)


@pytest.mark.postgres
def test_ledger_machine_on_servers(server_url: str) -> None:
    _run(server_url, 12)
