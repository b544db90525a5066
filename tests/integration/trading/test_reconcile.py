"""Reconciliation against a venue across the network: after a kill -9 between sending an order and
recording the venue's answer, the record is completed from the venue; nothing is sent twice.

The remote venue here is a small in-memory exchange (the Binance venue is tested against TACore's
exchange simulator); ``Crash`` stands for the kill -9: it unwinds the engine without running anything.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from engine_harness import Harness, harness_accounts

from tacore.trading.model import Liquidity, Order, OrderStatus
from tacore.trading.reconcile import reconcile
from tacore.trading.venues import VenueBalance, VenueError, VenueErrorCode, VenueFill, VenueReport

D = Decimal


class Crash(BaseException):
    """The process dies here."""


class RemoteExchange:
    name = "remote"
    remote = True

    def __init__(self) -> None:
        self.orders: dict[str, VenueReport] = {}
        self.submissions: list[str] = []
        self.crash_before_send = False
        self.crash_after_send = False
        self.error: VenueError | None = None
        self.fill_at: Decimal | None = Decimal("100")

    def submit(self, order: Order) -> VenueReport:
        if self.crash_before_send:
            raise Crash
        if self.error is not None:
            error, self.error = self.error, None
            if error.outcome_unknown:
                self._accept(order)
            raise error
        report = self._accept(order)
        if self.crash_after_send:
            raise Crash
        return report

    def _accept(self, order: Order) -> VenueReport:
        self.submissions.append(order.client_order_id)
        fills = () if self.fill_at is None else (
            VenueFill(f"t{len(self.submissions)}", order.qty, self.fill_at, D("0.1"), Liquidity.TAKER, 5),)
        status = OrderStatus.FILLED if fills else OrderStatus.NEW
        report = VenueReport(order.client_order_id, status, 5, f"x{len(self.submissions)}",
                             order.qty if fills else D(0), fills)
        self.orders[order.client_order_id] = report
        return report

    def cancel(self, order: Order) -> VenueReport:
        raise VenueError(VenueErrorCode.UNKNOWN_ORDER, "no")

    def query(self, order: Order) -> VenueReport | None:
        return self.orders.get(order.client_order_id)

    def open_orders(self, account: str) -> list[VenueReport]:
        return []

    def balances(self, account: str) -> list[VenueBalance]:
        return []


@pytest.fixture
def remote_harness(sqlite_url: str, harness_factory: Callable[..., Harness]) -> tuple[Harness, RemoteExchange]:
    exchange = RemoteExchange()
    accounts = harness_accounts(extra={"live": {"venue": "remote", "balances": {"USDT": "10000"}}})
    return harness_factory(sqlite_url, venues={"live": exchange}, accounts=accounts), exchange


def test_killed_before_sending_the_order_is_rejected_as_never_received_and_not_sent_again(
        remote_harness: tuple[Harness, RemoteExchange]) -> None:
    h, exchange = remote_harness
    exchange.crash_before_send = True
    with pytest.raises(Crash):
        h.place(account="live", request_id="r-1")
    exchange.crash_before_send = False
    engine = h.restart()
    (waiting,) = engine.open_orders()
    assert waiting.status is OrderStatus.ACCEPTED  # the intent was durable before the venue was called
    summary = reconcile(engine)
    assert (summary.checked, summary.unsent) == (1, 1)
    again = h.place(account="live", request_id="r-1")  # the client's retry: the same order, not a new one
    assert again.status is OrderStatus.REJECTED and "not received by the venue" in (again.reason or "")
    assert exchange.submissions == []


def test_killed_after_the_venue_filled_it_the_record_is_completed_from_the_venue_once(
        remote_harness: tuple[Harness, RemoteExchange]) -> None:
    h, exchange = remote_harness
    exchange.crash_after_send = True
    with pytest.raises(Crash):
        h.place(account="live", qty="2", request_id="r-2")
    exchange.crash_after_send = False
    engine = h.restart()
    summary = reconcile(engine)
    assert (summary.checked, summary.updated) == (1, 1)
    order = h.place(account="live", qty="2", request_id="r-2")
    assert (order.status, order.filled_qty, order.venue_order_id) == (OrderStatus.FILLED, D("2"), "x1")
    reconcile(h.restart())  # asking again records nothing twice
    position = {p.symbol: p for p in h.engine.positions("live")}["BTCUSDT"]
    assert position.qty == D("2") and exchange.submissions == ["r-2"]
    assert len(h.engine.fills_of([order.id])[order.id]) == 1


def test_a_venue_that_fails_after_sending_leaves_the_order_accepted_until_the_clock_asks_it(
        remote_harness: tuple[Harness, RemoteExchange]) -> None:
    h, exchange = remote_harness
    exchange.error = VenueError(VenueErrorCode.UNAVAILABLE, "read timed out", outcome_unknown=True)
    order = h.place(account="live", request_id="r-3")
    assert order.status is OrderStatus.ACCEPTED and "outcome unknown" in (order.reason or "")
    assert h.engine.on_clock() == 1
    assert order.status is OrderStatus.FILLED and exchange.submissions == ["r-3"]


def test_a_venue_refusal_rejects_the_order_with_the_venue_s_reason(
        remote_harness: tuple[Harness, RemoteExchange]) -> None:
    h, exchange = remote_harness
    exchange.error = VenueError(VenueErrorCode.REJECTED, "Account has insufficient balance", venue_code=-2010)
    order = h.place(account="live", request_id="r-4")
    assert order.status is OrderStatus.REJECTED
    assert order.reason == "remote: REJECTED [-2010]: Account has insufficient balance"
