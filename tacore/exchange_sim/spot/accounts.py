"""Spot accounts of the simulated exchange: one per API key, each with its secret, permissions,
commission rates and balances (free and locked per asset).

Amounts are exact ``Decimal``s. An order locks what it may spend when it is placed (a buy: price x
quantity of the quote asset; a sell: the quantity of the base asset) and each fill moves the locked
amount out and the proceeds, net of commission, in; a cancel or expiry releases the rest.
"""

from __future__ import annotations

import hmac
import itertools
import re
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
#: Binance API keys and secrets are 64 letters and digits
KEY_RE = re.compile(r"^[A-Za-z0-9]{64}$")
_uids = itertools.count(354_937_868)


class InsufficientBalance(Exception):
    """Not enough free balance of an asset for the action."""


@dataclass(slots=True)
class Holding:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass(eq=False)
class SpotAccount:
    api_key: str
    secret: str
    can_trade: bool = True
    #: commission rates as fractions (0.001 = 0.1 %, Binance's standard rate)
    maker_rate: Decimal = Decimal("0.001")
    taker_rate: Decimal = Decimal("0.001")
    holdings: dict[str, Holding] = field(default_factory=dict)
    uid: int = field(default_factory=lambda: next(_uids))
    update_time: int = 0

    def secret_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.secret.encode())

    def holding(self, asset: str) -> Holding:
        found = self.holdings.get(asset)
        if found is None:
            found = self.holdings[asset] = Holding()
        return found

    def free(self, asset: str) -> Decimal:
        found = self.holdings.get(asset)
        return found.free if found is not None else ZERO

    def deposit(self, asset: str, amount: Decimal) -> None:
        self.holding(asset).free += amount

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked; InsufficientBalance when it is not free."""
        held = self.holding(asset)
        if amount > held.free:
            raise InsufficientBalance(asset)
        held.free -= amount
        held.locked += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        held = self.holding(asset)
        held.locked -= amount
        held.free += amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self.holding(asset).locked -= amount

    def spend_free(self, asset: str, amount: Decimal) -> None:
        held = self.holding(asset)
        if amount > held.free:
            raise InsufficientBalance(asset)
        held.free -= amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.holding(asset).free += amount


class SpotAccounts:
    """Accounts by API key."""

    def __init__(self) -> None:
        self._by_key: dict[str, SpotAccount] = {}

    def get(self, api_key: str) -> SpotAccount | None:
        return self._by_key.get(api_key)

    def put(self, account: SpotAccount) -> SpotAccount:
        """Create or replace the account of ``account.api_key``."""
        if not KEY_RE.match(account.api_key) or not KEY_RE.match(account.secret):
            raise ValueError("an API key and its secret are 64 letters and digits")
        self._by_key[account.api_key] = account
        return account

    def __len__(self) -> int:
        return len(self._by_key)
