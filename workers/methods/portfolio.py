"""``portfolio.positions`` and ``account.balances``: the ledger's holdings, marked to the latest price."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tacore.trading.engine import OrderEngine
from tacore.trading.model.market import Quote
from tacore.trading.schemas import BalancesParams, PositionsParams
from tacore.trading.views import balance_view, equity, position_view
from workers.registry import MethodRegistry

PORTFOLIO_METHODS = ("portfolio.positions", "account.balances")

#: latest quotes of several symbols (one call to the data agent for the stale ones)
Quotes = Callable[[list[str]], dict[str, Quote | None]]


def build_registry(engine: OrderEngine, quotes: Quotes) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("portfolio.positions", idempotent=True)
    def positions(params: PositionsParams) -> dict[str, Any]:
        """Positions: quantity, average cost, market value, realised and unrealised P&L at the latest price."""
        account = None if params.account is None else engine.accounts.get(params.account).name
        held = [p for p in engine.positions(account)
                if (params.include_closed or p.qty != 0) and (params.symbol is None or p.symbol == params.symbol)]
        prices = quotes(sorted({p.symbol for p in held if p.qty != 0}))
        views = []
        for position in held:
            instrument = engine.instruments.resolve(position.symbol)
            views.append(position_view(position, instrument.asset_class if instrument else "unknown",
                                       prices.get(position.symbol)))
        return {"positions": views, "count": len(views)}

    @registry.method("account.balances", idempotent=True)
    def balances(params: BalancesParams) -> dict[str, Any]:
        """Cash per asset (total, reserved by open orders, available) and equity at the latest prices."""
        account = None if params.account is None else engine.accounts.get(params.account).name
        cash = engine.balances(account)
        held = [p for p in engine.positions(account) if p.qty != 0]
        prices = quotes(sorted({p.symbol for p in held}))
        return {"balances": [balance_view(b) for b in cash], "equity": equity(cash, held, prices), "count": len(cash)}

    return registry
