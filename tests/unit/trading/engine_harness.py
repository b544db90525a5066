"""An order engine on a real ledger with the paper venue, prices and a clock the test sets; ``restart``
builds a new engine on the same database, as a new order process would after a kill -9."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trading_helpers import T0, FixedQuotes

from tacore.markets.registry import load_markets
from tacore.trading.accounts import Accounts
from tacore.trading.engine import OrderEngine
from tacore.trading.instruments import Instruments
from tacore.trading.intents import OrderIntent
from tacore.trading.ledger import Ledger, make_ledger_engine, upgrade_ledger
from tacore.trading.model import Order, OrderType, Portfolio, Side, TimeInForce
from tacore.trading.venues import Venue, VenueContext, build_venues

D = Decimal


def harness_accounts(costs: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Accounts:
    return Accounts.from_mapping({"default_account": "paper", "accounts": {
        "paper": {"venue": "paper", "balances": {"USDT": "10000", "USD": "10000"}, "costs": costs or {}},
        **(extra or {}),
    }})


class Harness:
    def __init__(self, url: str, *, costs: dict[str, Any] | None = None, venues: dict[str, Venue] | None = None,
                 accounts: Accounts | None = None) -> None:
        self.url = url
        self.db = make_ledger_engine(url)
        upgrade_ledger(self.db)
        self.accounts = accounts or harness_accounts(costs)
        self.instruments = Instruments(load_markets(None))
        self.quotes = FixedQuotes()
        self.now = T0
        self.extra_venues = venues or {}
        self.engine = self._build()

    def _build(self) -> OrderEngine:
        portfolio = Portfolio()
        context = VenueContext(self.accounts, self.instruments, portfolio, self.quotes, clock=lambda: self.now)
        venues = {**build_venues_paper_only(context), **self.extra_venues}
        engine = OrderEngine(Ledger(self.db), self.accounts, self.instruments, self.quotes, portfolio, venues,
                             clock=lambda: self.now)
        engine.load()
        return engine

    def restart(self) -> OrderEngine:
        """A new engine on the same database: what was staged and not committed is gone."""
        self.engine = self._build()
        return self.engine

    def place(self, side: str = "buy", qty: str = "1", type: str = "market", tif: str = "gtc",
              limit: str | None = None, stop: str | None = None, symbol: str = "BTCUSDT",
              client_order_id: str | None = None, request_id: str | None = None, account: str | None = None,
              commit: bool = True) -> Order:
        placed = self.engine.place(OrderIntent(
            symbol=symbol, side=Side(side), type=OrderType(type), time_in_force=TimeInForce(tif), qty=D(qty),
            limit_price=None if limit is None else D(limit), stop_price=None if stop is None else D(stop),
            account=account, client_order_id=client_order_id, request_id=request_id))
        if commit:
            self.engine.commit()
        return placed.order

    def close(self) -> None:
        self.db.dispose()


def build_venues_paper_only(context: VenueContext) -> dict[str, Venue]:
    paper_accounts = Accounts([a for a in context.accounts if a.venue == "paper"], context.accounts.default) \
        if any(a.venue != "paper" for a in context.accounts) else context.accounts
    return build_venues(VenueContext(paper_accounts, context.instruments, context.portfolio, context.quotes,
                                     clock=context.clock))
