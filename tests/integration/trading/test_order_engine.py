"""The order engine on a real ledger (SQLite file, PostgreSQL, MariaDB): placing, retrying, resting, filling
on candles, canceling, and what survives a restart."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from engine_harness import Harness, harness_accounts
from sqlalchemy import func, select, text
from trading_helpers import T0, candle

from tacore.errors import Conflict, Unavailable
from tacore.trading.intents import OrderIntent
from tacore.trading.ledger.tables import fills, order_events, orders
from tacore.trading.model import OrderStatus, OrderType, Side, TimeInForce

D = Decimal


def test_a_market_order_fills_and_its_order_events_fill_position_and_cash_are_durable(
        ledger_url: str, harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(ledger_url, costs={"taker_fee_bps": "10"})
    h.quotes.set("BTCUSDT", "100")
    order = h.place(qty="2", request_id="req-1")
    assert (order.status, order.filled_qty, order.filled_avg_price, order.fees) == \
        (OrderStatus.FILLED, D("2"), D("100"), D("0.2"))
    assert order.client_order_id == "req-1"
    engine = h.restart()
    (position,) = engine.positions("paper")
    cash = {b.asset: b for b in engine.balances("paper")}["USDT"]
    assert (position.qty, position.cost_basis) == (D("2"), D("200"))
    assert (cash.total, cash.reserved) == (D("9799.8"), D("0"))
    with h.db.connect() as conn:
        kinds = conn.execute(select(order_events.c.kind).order_by(order_events.c.seq)).scalars().all()
        assert kinds == ["accepted", "new", "filled"]
        assert conn.execute(select(func.count()).select_from(fills)).scalar() == 1


def test_a_retried_client_order_id_answers_the_same_order_and_another_payload_is_a_conflict(
        ledger_url: str, harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(ledger_url)
    h.quotes.set("BTCUSDT", "100")
    first = h.place(qty="1", client_order_id="my-order-1")
    h.restart()
    again = h.place(qty="1", client_order_id="my-order-1", request_id="another-request")
    assert again.id == first.id
    with pytest.raises(Conflict) as info:
        h.place(qty="2", client_order_id="my-order-1")
    assert info.value.details["order_id"] == first.id
    with h.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar() == 1


def test_a_resting_limit_reserves_cash_fills_on_a_later_candle_after_a_restart_and_releases_the_rest(
        ledger_url: str, harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(ledger_url, costs={"maker_fee_bps": "0", "taker_fee_bps": "0"})
    h.quotes.set("BTCUSDT", "100", ts_ms=T0 + 10_000)
    limit = h.place(type="limit", limit="95", qty="10", tif="gtc")
    assert limit.status is OrderStatus.NEW and limit.reserved == D("950")
    usdt = {b.asset: b for b in h.engine.balances("paper")}["USDT"]
    assert (usdt.reserved, usdt.available) == (D("950"), D("9050"))
    engine = h.restart()  # the book is rebuilt from the ledger
    assert engine.on_candle(candle("99", "100", "96", "97", minute=1)) == 0
    assert engine.on_candle(candle("96", "97", "94", "95", minute=2)) == 1
    filled = engine.find(None, limit.id, None)
    assert (filled.status, filled.filled_avg_price, filled.reserved) == (OrderStatus.FILLED, D("95"), D("0"))
    assert engine.on_candle(candle("96", "97", "94", "95", minute=2)) == 0  # the same candle again: nothing
    h.restart()
    usdt = {b.asset: b for b in h.engine.balances("paper")}["USDT"]
    assert (usdt.total, usdt.reserved) == (D("9050"), D("0"))


def test_recent_fills_are_the_newest_across_all_orders_not_only_those_of_the_newest_orders(
        ledger_url: str, harness_factory: Callable[..., Harness]) -> None:
    other = {"other": {"venue": "paper", "balances": {"USDT": "10000"}}}
    h = harness_factory(ledger_url, accounts=harness_accounts(extra=other))
    h.quotes.set("BTCUSDT", "100", ts_ms=T0 + 10_000)
    oldest = h.place(type="limit", limit="95", qty="1", tif="gtc")  # rests while 55 newer orders fill
    for i in range(55):
        h.now = T0 + 20_000 + i
        h.quotes.set("BTCUSDT", "100", ts_ms=h.now)
        h.place(qty="0.01", account="other" if i % 5 == 0 else None)
    h.now = T0 + 180_000  # after the candle closed: its fill is the newest
    assert h.engine.on_candle(candle("96", "97", "94", "95", minute=2)) == 1  # the oldest order fills last
    newest = h.engine.recent_fills(None, 20)
    assert len(newest) == 20
    fill, order = newest[0]
    assert order is not None and (order.id, order.type, fill.price) == (oldest.id, OrderType.LIMIT, D("95"))
    assert [f.ts_ms for f, _ in newest] == sorted((f.ts_ms for f, _ in newest), reverse=True)
    assert {o.type for _, o in newest if o is not None} == {OrderType.LIMIT, OrderType.MARKET}
    theirs = h.engine.recent_fills("other", 50)
    assert len(theirs) == 11 and {f.account for f, _ in theirs} == {"other"}


def test_cancel_ends_a_resting_order_and_releases_what_it_held_and_a_second_cancel_changes_nothing(
        sqlite_url: str, harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(sqlite_url)
    h.quotes.set("BTCUSDT", "100")
    h.place(qty="3")
    sell = h.place(side="sell", type="limit", limit="150", qty="2")
    assert h.engine.positions("paper")[0].reserved_qty == D("2")
    canceled = h.engine.cancel(None, sell.id, None)
    h.engine.commit()
    assert canceled.status is OrderStatus.CANCELED and h.engine.positions("paper")[0].reserved_qty == 0
    assert h.engine.cancel(None, None, sell.client_order_id).status is OrderStatus.CANCELED
    assert h.engine.open_count() == 0


def test_staged_orders_lost_with_the_process_leave_no_trace_and_their_retry_places_them(
        sqlite_url: str, harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(sqlite_url)
    h.quotes.set("BTCUSDT", "100")
    h.place(qty="1", request_id="lost-1", commit=False)  # the reply would have waited for this commit
    engine = h.restart()
    assert engine.list_orders(_all())[0] == []
    again = h.place(qty="1", request_id="lost-1")
    assert again.status is OrderStatus.FILLED and len(engine.list_orders(_all())[0]) == 1


def test_a_failed_commit_undoes_the_staged_effects_and_fails_the_next_barrier(
        sqlite_url: str, harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(sqlite_url)
    h.quotes.set("BTCUSDT", "100")
    h.place(qty="1", client_order_id="kept")
    with h.db.begin() as conn:  # the database refuses the next order's row
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON orders WHEN NEW.qty = '2' "
                          "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    h.place(qty="2", client_order_id="refused", commit=False)
    with pytest.raises(Unavailable):
        h.engine.commit()
    assert h.engine.open_count() == 0
    usdt = {b.asset: b for b in h.engine.balances("paper")}["USDT"]
    assert usdt.total == D("9899.98")  # only the first order's cost and fee remain
    h.engine.commit()  # the failure was reported once; the next batch commits normally


def test_orders_list_in_pages_newest_first_filtered_by_status_and_symbol(
        ledger_url: str, harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(ledger_url)
    h.quotes.set("BTCUSDT", "100")
    h.quotes.set("ETHUSDT", "10")
    made = []
    for i in range(5):
        h.now = T0 + i
        made.append(h.place(symbol="ETHUSDT" if i % 2 else "BTCUSDT", qty="1"))
    page, cursor = h.engine.list_orders(_all(limit=2))
    assert [o.id for o in page] == [made[4].id, made[3].id] and cursor is not None
    rest, end = h.engine.list_orders(_all(limit=10, cursor=cursor))
    assert [o.id for o in rest] == [m.id for m in reversed(made[:3])] and end is None
    eth, _ = h.engine.list_orders(_all(symbols=("ETHUSDT",)))
    assert {o.id for o in eth} == {made[1].id, made[3].id}


def test_a_day_order_expires_at_its_session_end_through_the_clock(
        sqlite_url: str, harness_factory: Callable[..., Harness]) -> None:
    from tacore.trading.venues.paper import EXPIRY_GRACE_MS

    h = harness_factory(sqlite_url)
    h.quotes.set("BTCUSDT", "100")
    day = h.place(type="limit", limit="50", tif="day")
    assert day.expires_ms == T0 - T0 % 86_400_000 + 86_400_000  # the UTC day's end
    h.now = day.expires_ms + EXPIRY_GRACE_MS
    assert h.engine.on_clock() == 1
    assert h.engine.find(None, day.id, None).status is OrderStatus.EXPIRED


def test_an_unknown_symbol_is_rejected_and_recorded(sqlite_url: str, harness_factory: Callable[..., Harness]) -> None:
    h = harness_factory(sqlite_url)
    order = h.engine.place(OrderIntent("ZZ9", Side.BUY, OrderType.MARKET, TimeInForce.DAY, D("1"))).order
    assert order.status is OrderStatus.REJECTED and "unknown symbol" in (order.reason or "")


def _all(**kwargs: object):  # type: ignore[no-untyped-def]
    from tacore.trading.ledger import OrderQuery

    return OrderQuery(statuses=None, **kwargs)  # type: ignore[arg-type]
