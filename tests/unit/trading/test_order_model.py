"""The order's state machine and the portfolio's accounting (tacore/trading/model)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from trading_helpers import order

from tacore.trading.accounts import load_accounts
from tacore.trading.model import Fill, Liquidity, OrderEventKind, OrderStateError, OrderStatus, Portfolio, Side
from tacore.trading.model.money import fmt, mul, to_decimal

D = Decimal
ROOT = Path(__file__).resolve().parents[3]


def _fill(o, qty: str, price: str = "100", fee: str = "0") -> Fill:  # type: ignore[no-untyped-def]
    return Fill(f"f{qty}{price}", o.id, o.account, o.symbol, o.side, D(qty), D(price), D(fee), "USDT",
                Liquidity.TAKER, o.created_ms + 1, f"v{qty}{price}")


def test_every_transition_appends_one_numbered_event() -> None:
    o = order(qty="3")
    o.acknowledge(1, "v-1")
    o.apply_fill(_fill(o, "1"))
    o.apply_fill(_fill(o, "2", "101"))
    kinds = [(e.seq, e.kind, e.status) for e in o.drain_events()]
    assert kinds == [(1, OrderEventKind.ACCEPTED, OrderStatus.ACCEPTED), (2, OrderEventKind.NEW, OrderStatus.NEW),
                     (3, OrderEventKind.FILLED, OrderStatus.PARTIALLY_FILLED),
                     (4, OrderEventKind.FILLED, OrderStatus.FILLED)]
    assert o.filled_avg_price == D("100.6666666667") and o.drain_events() == []


def test_filled_qty_never_exceeds_qty_and_a_rejected_overfill_changes_nothing() -> None:
    o = order(qty="1")
    o.apply_fill(_fill(o, "0.6"))
    with pytest.raises(OrderStateError):
        o.apply_fill(_fill(o, "0.5"))
    assert (o.filled_qty, o.status, o.event_seq) == (D("0.6"), OrderStatus.PARTIALLY_FILLED, 2)


@pytest.mark.parametrize("end", ["fill", "cancel", "expire", "reject"])
def test_a_terminal_state_never_changes(end: str) -> None:
    o = order(qty="1")
    {"fill": lambda: o.apply_fill(_fill(o, "1")), "cancel": lambda: o.cancel(2, "asked"),
     "expire": lambda: o.expire(2, "session ended"), "reject": lambda: o.reject(2, "no price")}[end]()
    assert o.status.terminal
    for change in (lambda: o.cancel(3, "again"), lambda: o.expire(3, "x"), lambda: o.reject(3, "x"),
                   lambda: o.apply_fill(_fill(o, "0.1")), lambda: o.acknowledge(3), lambda: o.request_cancel(3)):
        with pytest.raises(OrderStateError):
            change()


def test_an_order_that_filled_part_cannot_be_rejected_only_canceled() -> None:
    o = order(qty="2")
    o.apply_fill(_fill(o, "1"))
    with pytest.raises(OrderStateError):
        o.reject(5, "late")
    o.cancel(5, "asked")
    assert o.status is OrderStatus.CANCELED and o.filled_qty == 1


def test_selling_realises_pnl_at_average_cost_and_cash_plus_cost_basis_is_conserved_net_of_fees() -> None:
    p = Portfolio()
    p.deposit("paper", "USDT", D("10000"), 0)
    buy1, buy2, sell = order(qty="2"), order(qty="1"), order(side="sell", qty="2.5")
    p.apply_fill(buy1, _fill(buy1, "2", "100", "0.2"))
    p.apply_fill(buy2, _fill(buy2, "1", "130", "0.13"))
    p.apply_fill(sell, _fill(sell, "2.5", "120", "0.3"))
    position, cash = p.position("paper", "BTCUSDT", "USDT"), p.balance("paper", "USDT")
    assert position.qty == D("0.5") and position.cost_basis == D("55")  # avg cost 110
    assert position.realized_pnl == D("25")  # 2.5 x (120 - 110)
    assert cash.total + position.cost_basis == cash.deposited - position.fees + position.realized_pnl


def test_a_sell_past_the_position_goes_short_at_its_price() -> None:
    p = Portfolio()
    p.deposit("paper", "USDT", D("0"), 0)
    buy, sell = order(qty="1"), order(side="sell", qty="3")
    p.apply_fill(buy, _fill(buy, "1", "100"))
    p.apply_fill(sell, _fill(sell, "3", "90"))
    position = p.position("paper", "BTCUSDT", "USDT")
    assert (position.qty, position.cost_basis, position.realized_pnl) == (D("-2"), D("-180"), D("-10"))


def test_reservations_are_released_in_proportion_to_fills_and_in_full_at_the_end() -> None:
    p = Portfolio()
    p.deposit("paper", "USDT", D("1000"), 0)
    o = order(qty="4", type="limit", limit="100")
    p.reserve(o, D("400"), 1)
    p.apply_fill(o, _fill(o, "1"))
    assert (o.reserved, p.balance("paper", "USDT").reserved) == (D("300"), D("300"))
    o.cancel(2, "asked")
    p.finish(o, 2)
    assert (o.reserved, p.balance("paper", "USDT").reserved) == (D("0"), D("0"))


def test_money_is_exact_and_printed_canonically() -> None:
    assert to_decimal(0.1) == D("0.1") and to_decimal("1e-8") == D("0.00000001")
    assert mul(D("0.1"), D("3")) == D("0.3")
    assert fmt(D("150.2500000000")) == "150.25" and fmt(D("1E+2")) == "100" and fmt(D("0E-10")) == "0"
    with pytest.raises(ValueError):
        to_decimal(float("nan"))


def test_the_packaged_trading_config_is_the_repository_s() -> None:
    assert (ROOT / "config/trading_config.yaml").read_text() == \
        (ROOT / "tacore/defaults/trading_config.yaml").read_text()
    accounts = load_accounts(None)
    assert accounts.default == "paper" and accounts.get(None).balances["USDT"] == D("100000")
    assert Side.BUY.sign == 1
