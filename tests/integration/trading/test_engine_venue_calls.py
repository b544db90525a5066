"""The engine's lock is not held across a call to a remote venue: a slow exchange (the Binance venue against
TACore's exchange simulator, its answer held back) holds up neither an order on another venue nor the clock,
and a repeated client order id still answers the one order its first call placed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from binance_helpers import SimControl, make_venue
from engine_harness import Harness, harness_accounts

from tacore.exchange_sim import ExchangeSimulator, SimConfig
from tacore.trading.intents import OrderIntent
from tacore.trading.model import Order, OrderStatus, OrderType, Side, TimeInForce

D = Decimal
HELD_BACK_S = 1.5


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(SimConfig(alpaca=False, clock_speed=1.0, seed=5)) as running:
        yield running


@pytest.fixture
def control(sim: ExchangeSimulator) -> Iterator[SimControl]:
    ctl = SimControl(sim.rest_url)
    yield ctl
    ctl.reset()


@pytest.fixture
def two_venues(sim: ExchangeSimulator, control: SimControl, sqlite_url: str,
               harness_factory: Callable[..., Harness]) -> tuple[Harness, str]:
    key, secret = control.add_account({"USDT": "100000", "BTC": "1"})
    binance = make_venue(sim.rest_url, key, secret, timeout_s=10.0)
    accounts = harness_accounts(extra={"live": {"venue": "binance", "balances": {"USDT": "100000"}}})
    h = harness_factory(sqlite_url, venues={"live": binance}, accounts=accounts)
    h.quotes.set("ETHUSDT", "10")
    return h, key


def _in_background(call: Callable[[], Order]) -> tuple[threading.Thread, list[Order]]:
    out: list[Order] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def _wait_accepted_at(h: Harness, account: str) -> Order:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [o for o in h.engine.open_orders() if o.account == account]
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no order reached account {account}")


def _live_buy(client_order_id: str) -> OrderIntent:
    return OrderIntent(symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, time_in_force=TimeInForce.GTC,
                       qty=D("0.002"), limit_price=None, stop_price=None, account="live",
                       client_order_id=client_order_id, request_id=None)


def test_a_slow_exchange_call_holds_up_neither_a_paper_order_on_another_symbol_nor_the_clock(
        two_venues: tuple[Harness, str], control: SimControl) -> None:
    h, key = two_venues
    control.reply_fault("delay", HELD_BACK_S)
    slow, placed = _in_background(lambda: h.engine.place(_live_buy("slow-1")).order)
    in_flight = _wait_accepted_at(h, "live")
    assert in_flight.status is OrderStatus.ACCEPTED

    started = time.monotonic()
    paper = h.place(symbol="ETHUSDT", qty="1")  # placed and committed while the exchange has not answered
    h.engine.on_clock()  # nor does the clock ask the exchange about the order in flight (or wait for it)
    took = time.monotonic() - started
    assert paper.status is OrderStatus.FILLED and paper.account == "paper"
    assert slow.is_alive() and in_flight.status is OrderStatus.ACCEPTED
    assert took < HELD_BACK_S / 3, f"the paper order waited {took:.2f} s for the exchange"

    slow.join(10)
    assert placed and placed[0].status is OrderStatus.FILLED and placed[0].filled_qty == D("0.002")
    h.engine.commit()
    assert len(control.orders_with(key, "slow-1")) == 1


def test_a_repeated_client_order_id_during_the_exchange_call_answers_the_one_order_once_it_is_answered(
        two_venues: tuple[Harness, str], control: SimControl) -> None:
    h, key = two_venues
    control.reply_fault("delay", HELD_BACK_S)
    first, placed = _in_background(lambda: h.engine.place(_live_buy("twice-1")).order)
    _wait_accepted_at(h, "live")
    again = h.engine.place(_live_buy("twice-1"))  # waits for the first call's answer, sends nothing
    first.join(10)
    assert again.existing and placed and again.order is placed[0]
    assert again.order.status is OrderStatus.FILLED
    h.engine.commit()
    assert len(control.orders_with(key, "twice-1")) == 1
    assert [o.client_order_id for o in h.restart().open_orders()] == []
