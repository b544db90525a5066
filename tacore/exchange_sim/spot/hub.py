"""The spot trading side's shared state: accounts by API key, symbol rules, the matching engine, the
request limits and the faults queued by the control API. Everything runs in the simulator's one
asyncio loop, so nothing here needs a lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from decimal import Decimal
from typing import Any

from tacore.exchange_sim.hub import Hub
from tacore.exchange_sim.minutes import KNOWN_SYMBOLS
from tacore.exchange_sim.spot.accounts import SpotAccount, SpotAccounts
from tacore.exchange_sim.spot.limits import IpLimits, OrderCounts
from tacore.exchange_sim.spot.matching import SpotEngine
from tacore.exchange_sim.spot.symbols import SymbolRules

log = logging.getLogger(__name__)
#: how often (real seconds) resting orders are evaluated while no request comes
ADVANCE_EVERY_S = 0.2


class SpotHub:
    def __init__(self, hub: Hub) -> None:
        cfg = hub.config
        self.hub = hub
        self.accounts = SpotAccounts()
        default = self.accounts.put(SpotAccount(cfg.spot_api_key, cfg.spot_api_secret,
                                                maker_rate=cfg.spot_commission, taker_rate=cfg.spot_commission))
        for asset, amount in cfg.spot_balances:
            default.deposit(asset, Decimal(amount))
        self._rules: dict[str, SymbolRules | None] = {}
        self.engine = SpotEngine(hub.market, hub.clock.now_ms, self.rules, Decimal(str(cfg.spot_liquidity_share)))
        self.limits = IpLimits(cfg.spot_weight_limit)
        self.order_counts = OrderCounts(cfg.spot_orders_per_10s, cfg.spot_orders_per_day)
        #: what happens to the answers of the next order requests: ("delay", seconds) or ("unknown", 0)
        self.reply_faults: deque[tuple[str, float]] = deque()
        self.counters = {"requests": 0, "errors": 0, "replies_delayed": 0, "replies_lost": 0}

    def rules(self, symbol: str) -> SymbolRules | None:
        """The rules of a listed symbol the simulator can trade (None otherwise)."""
        if symbol not in self._rules:
            found = None
            if self.hub.is_listed(symbol):
                found = SymbolRules.from_profile(self.hub.market.profile(symbol))
            self._rules[symbol] = found
        return self._rules[symbol]

    def listed(self) -> list[str]:
        """What ``exchangeInfo`` lists without a symbol: the whitelist, or the symbols with real price levels."""
        names = sorted(self.hub.config.symbols) if self.hub.config.symbols is not None else list(KNOWN_SYMBOLS)
        return [s for s in names if self.rules(s) is not None]

    async def run(self) -> None:
        """Evaluate resting orders against the path while nobody asks, so they fill on time."""
        while True:
            try:
                self.engine.advance()
            except Exception:  # logged; the loop must go on matching
                log.exception("spot matching failed")
            await asyncio.sleep(ADVANCE_EVERY_S)

    def stats(self) -> dict[str, Any]:
        return {**self.counters, **self.engine.stats(), **self.limits.counters, "accounts": len(self.accounts),
                "used_weight_1m": self.limits.used, "faults_pending": len(self.limits.faults),
                "reply_faults_pending": len(self.reply_faults)}
