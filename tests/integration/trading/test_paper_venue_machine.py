"""A hypothesis state machine of the paper venue (through the engine): random orders of every type, candles,
price moves, cancels and the clock; after every step cash plus cost basis is conserved net of fees,
reservations match open orders, nothing is overdrawn, filled_qty stays within qty, terminal states hold,
and no limit fills past its limit."""

from __future__ import annotations

from decimal import Decimal

from engine_harness import Harness
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from machine_checks import check_books, check_orders
from trading_helpers import T0, candle

from tacore.errors import Conflict
from tacore.trading.model import OrderStatus

D = Decimal
PRICES = st.integers(min_value=80, max_value=120)
QTY = st.sampled_from(["0.5", "1", "2", "3.25", "7", "60"])


class PaperVenueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness("sqlite://", costs={"maker_fee_bps": "3", "taker_fee_bps": "7", "half_spread_bps": "5",
                                             "slippage_bps": "4", "volume_cap": "0.25"})
        self.minute = 1
        self.price = 100
        self.h.quotes.set("BTCUSDT", "100", ts_ms=T0, volume="12", candle_open_ms=T0 - 60_000)
        self.seen: dict[str, tuple[OrderStatus, Decimal]] = {}

    def teardown(self) -> None:
        self.h.close()

    @rule(side=st.sampled_from(["buy", "sell"]), qty=QTY,
          kind=st.sampled_from(["market", "limit", "stop", "stop_limit"]),
          tif=st.sampled_from(["day", "gtc", "ioc", "fok"]), offset=st.integers(min_value=-10, max_value=10),
          gap=st.integers(min_value=0, max_value=5))
    def place(self, side: str, qty: str, kind: str, tif: str, offset: int, gap: int) -> None:
        if kind in ("stop", "stop_limit") and tif in ("ioc", "fok"):
            tif = "gtc"
        limit = str(self.price + offset) if kind in ("limit", "stop_limit") else None
        stop = str(self.price + (offset if offset else 1)) if kind in ("stop", "stop_limit") else None
        if kind == "stop_limit" and stop is not None:
            limit = str(int(stop) + (gap if side == "buy" else -gap))
        try:
            self.h.place(side=side, qty=qty, type=kind, tif=tif, limit=limit, stop=stop)
        except Conflict:  # pragma: no cover - ids are fresh here
            raise

    @rule(move=st.integers(min_value=-6, max_value=6), spread=st.integers(min_value=0, max_value=8),
          volume=st.sampled_from(["0", "4", "12", "100"]))
    def candle_closes(self, move: int, spread: int, volume: str) -> None:
        open_ = self.price
        close = max(10, self.price + move)
        high, low = max(open_, close) + spread, max(1, min(open_, close) - spread)
        self.h.now = T0 + (self.minute + 1) * 60_000
        self.h.engine.on_candle(candle(str(open_), str(high), str(low), str(close), volume, minute=self.minute))
        self.minute += 1
        self.price = close

    @precondition(lambda self: self.h.engine.open_count() > 0)
    @rule(pick=st.integers(min_value=0, max_value=50))
    def cancel(self, pick: int) -> None:
        open_orders = self.h.engine.open_orders()
        target = open_orders[pick % len(open_orders)]
        self.h.engine.cancel(None, target.id, None)
        self.h.engine.commit()

    @rule(days=st.integers(min_value=1, max_value=2))
    def a_day_passes(self, days: int) -> None:
        self.h.now += days * 86_400_000
        self.h.engine.on_clock()

    @invariant()
    def books_balance(self) -> None:
        check_books(self.h.engine)
        check_orders(self.h.engine, self.seen)


PaperVenueMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                               suppress_health_check=[HealthCheck.too_slow])
test_paper_venue_machine = PaperVenueMachine.TestCase
