"""Which feed carries a symbol: its market (``trading_config.yaml``) decides, unless a caller named one.

``MarketRegistry.market_of`` assigns a symbol by the markets' universes, then their symbol patterns
(``AAPL`` and ``BRK.B`` are ``US``, ``BTCUSDT`` is ``CRYPTO``); a call may force a market with its
``market`` param, and that choice is remembered (and persisted with the subscription) so the symbol
keeps its feed after a restart. A symbol of no market is ``INVALID_PARAMS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tacore.errors import InvalidParams
from tacore.markets import Market, MarketRegistry, MarketSource

Pair = tuple[str, str]


class MarketRouter:
    def __init__(self, registry: MarketRegistry, remembered: dict[str, str] | None = None) -> None:
        self.registry = registry
        self.remembered: dict[str, str] = {}
        for symbol, name in (remembered or {}).items():
            if name in registry.names():
                self.remembered[symbol] = name

    def market_of(self, symbol: str, forced: str | None = None) -> Market:
        """The market of ``symbol``; INVALID_PARAMS naming the markets when none fits."""
        if forced is not None:
            return self.registry.get(forced)
        name = self.remembered.get(symbol)
        if name is not None:
            return self.registry.get(name)
        return self.registry.require_market_of(symbol)

    def split(self, pairs: Iterable[Pair], forced: str | None = None) -> dict[MarketSource, list[Pair]]:
        """Pairs by the source of their market (checks every symbol first: all or nothing)."""
        pairs = list(pairs)
        if forced is not None:
            self.registry.get(forced)  # an unknown market is INVALID_PARAMS listing the known ones
        problems: list[dict[str, Any]] = []
        markets: dict[str, Market] = {}
        for symbol in dict.fromkeys(s for s, _ in pairs):
            try:
                markets[symbol] = self.market_of(symbol, forced)
            except InvalidParams as exc:
                problems.extend(exc.details or [{"field": "symbols", "symbol": symbol, "message": str(exc)}])
        if problems:
            known = ", ".join(self.registry.names())
            raise InvalidParams(f"symbol(s) of no market ({known}): "
                                f"{', '.join(str(p.get('symbol', '?')) for p in problems)}; nothing added",
                                details=problems)
        out: dict[MarketSource, list[Pair]] = {source: [] for source in MarketSource}
        for symbol, interval in pairs:
            out[markets[symbol].source].append((symbol, interval))
        if forced is not None:
            for symbol, market in markets.items():
                self.remembered[symbol] = market.name
        return out

    def name_of(self, symbol: str) -> str | None:
        """The market a subscribed symbol belongs to (for replies), without raising."""
        try:
            return self.market_of(symbol).name
        except InvalidParams:
            return None

    def by_market(self, symbols: Iterable[str]) -> dict[str, list[str]]:
        """Symbols grouped by market name, ``?`` for one of no market (for replies, which must not raise)."""
        out: dict[str, list[str]] = {}
        for symbol in symbols:
            out.setdefault(self.name_of(symbol) or "?", []).append(symbol)
        return out
