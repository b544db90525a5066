"""The ``Venue`` protocol: where orders are sent (the paper venue, Binance spot), and what it answers.

The order engine (``tacore.trading.engine``) is the only caller. It records the intent (``accepted``)
before it calls ``submit``, then applies the ``VenueReport`` it gets: the status, and each fill the
venue reports (fills are recorded once per ``VenueFill.fill_id``, so a venue may report the same fill
again, e.g. on every ``query``). Errors are ``VenueError`` with a ``VenueErrorCode``:

- ``REJECTED``, ``FILTER``, ``AUTH``: the venue refused, nothing was placed -> the order is ``rejected``
  with the message as its reason (``FILTER`` is raised before sending, from the venue's own rules);
- ``UNAVAILABLE``, ``RATE_LIMITED``, ``CLOCK_SKEW``: the call failed. ``outcome_unknown`` says whether
  the request may have reached the venue (a timeout after sending): then the order stays ``accepted``
  and reconciliation asks the venue by client order id (``query``) until it knows; otherwise it was
  not placed and the order is rejected with the reason;
- ``UNKNOWN_ORDER``: ``cancel`` found no such order at the venue.

A venue whose calls leave the process (``remote = True``) gets every call with the intent already
committed; the paper venue (``remote = False``) lives in the order process, so its answer and the intent
commit together. Implementations: ``paper.PaperVenue`` and ``binance`` (Binance spot REST).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from tacore.trading.model import Liquidity, Order, OrderStatus
from tacore.trading.model.market import Candle
from tacore.trading.model.money import ZERO


class VenueErrorCode(StrEnum):
    REJECTED = "REJECTED"  # refused by the venue (insufficient balance, would trigger immediately, ...)
    FILTER = "FILTER"  # outside the venue's price/quantity/notional rules; checked before sending
    AUTH = "AUTH"  # keys missing, wrong or without permission
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  # no such order at the venue (cancel)
    UNAVAILABLE = "UNAVAILABLE"  # the venue could not be reached or failed
    RATE_LIMITED = "RATE_LIMITED"  # the venue said to back off (HTTP 429/418); retry_after_s says how long
    CLOCK_SKEW = "CLOCK_SKEW"  # our timestamp fell outside the venue's window even after a time resync


#: Codes after which nothing was placed: the order is rejected with the error's message.
REFUSED_CODES = frozenset({VenueErrorCode.REJECTED, VenueErrorCode.FILTER, VenueErrorCode.AUTH})


class VenueError(Exception):
    def __init__(self, code: VenueErrorCode, message: str, *, outcome_unknown: bool = False,
                 retry_after_s: float | None = None, venue_code: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: True when the request may have reached the venue (sent, then no answer)
        self.outcome_unknown = outcome_unknown
        self.retry_after_s = retry_after_s
        #: the venue's own error code (Binance: -2010, -1013, ...), for the reason and the logs
        self.venue_code = venue_code

    def __str__(self) -> str:
        own = f" [{self.venue_code}]" if self.venue_code is not None else ""
        return f"{self.code}{own}: {self.message}"


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution as the venue reports it."""

    fill_id: str  # unique per order at the venue (Binance: the tradeId)
    qty: Decimal
    price: Decimal
    fee: Decimal  # in the order's quote asset
    liquidity: Liquidity
    ts_ms: int


@dataclass(frozen=True, slots=True)
class VenueReport:
    """The venue's view of one order. ``fills`` may repeat fills reported before (recorded once by id);
    together with the fills already recorded they must add up to ``filled_qty``."""

    client_order_id: str
    status: OrderStatus  # new, partially_filled, filled, canceled, expired, rejected, pending_cancel
    ts_ms: int
    venue_order_id: str | None = None
    filled_qty: Decimal = ZERO  # cumulative
    fills: Sequence[VenueFill] = field(default_factory=tuple)
    reason: str | None = None  # why rejected, canceled or expired
    triggered: bool = False  # a stop's price was reached


@dataclass(frozen=True, slots=True)
class VenueBalance:
    asset: str
    free: Decimal
    locked: Decimal


@runtime_checkable
class Venue(Protocol):
    #: the name orders carry in ``venue`` (``paper``, ``binance``)
    name: str
    #: calls leave the process: the engine commits the intent before each call
    remote: bool

    def submit(self, order: Order) -> VenueReport:
        """Place ``order`` (its client order id identifies it at the venue). Raises ``VenueError``."""
        ...

    def cancel(self, order: Order) -> VenueReport:
        """Cancel ``order``; the report says what it is now (``canceled``, or ``filled`` if that came first)."""
        ...

    def query(self, order: Order) -> VenueReport | None:
        """The venue's view of ``order`` by its client order id; None if the venue never received it."""
        ...

    def open_orders(self, account: str) -> list[VenueReport]:
        """Every order the venue holds open for ``account``."""
        ...

    def balances(self, account: str) -> list[VenueBalance]:
        """What the venue says ``account`` holds."""
        ...


@runtime_checkable
class SimulatedVenue(Venue, Protocol):
    """A venue that lives in the order process and fills against the market data TACore stores (paper).

    The engine hands it the open orders it recorded at start-up (``restore``), every closed candle
    (``on_candle``) and the passing of time (``on_clock``: expiries), and records what each returns.
    """

    def restore(self, orders: list[Order]) -> None:
        """Rebuild the book from the ledger's open orders (at start-up, and after a failed commit)."""
        ...

    def on_candle(self, candle: Candle) -> list[tuple[Order, VenueReport]]:
        """What a closed 1m candle did to the orders resting here."""
        ...

    def on_clock(self, now_ms: int) -> list[tuple[Order, VenueReport]]:
        """Orders whose time ran out by ``now_ms`` (a day order past its session with no candle to say so)."""
        ...
