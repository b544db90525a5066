"""Trading accounts from ``trading_config.yaml``: which venue each trades on, its starting balances, and
(for the paper venue) its fees, half-spread, slippage and volume cap.

Starting balances are deposited into the ledger the first time an account (or one of its assets) is
seen; after that the ledger is the truth and editing the file does not change an existing balance.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tacore.errors import ConfigError, InvalidParams
from tacore.markets.registry import read_trading_config
from tacore.trading.model.money import MAX_VALUE, places, to_decimal

ACCOUNT_NAME = r"^[A-Za-z0-9_-]{1,64}$"


def _decimal(value: Any) -> Decimal:
    return to_decimal(value)


class Costs(BaseModel):
    """What trading costs on the paper venue (and what reservations assume elsewhere)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    maker_fee_bps: Decimal = Field(default=Decimal("1"), ge=0, le=1000)
    taker_fee_bps: Decimal = Field(default=Decimal("2"), ge=0, le=1000)
    half_spread_bps: Decimal = Field(default=Decimal("0"), ge=0, le=1000)
    slippage_bps: Decimal = Field(default=Decimal("0"), ge=0, le=1000)
    #: the share of a candle's volume one candle's fills may take, across all orders (None: no cap)
    volume_cap: Decimal | None = Field(default=None, gt=0, le=1)

    _exact = field_validator("maker_fee_bps", "taker_fee_bps", "half_spread_bps", "slippage_bps", "volume_cap",
                             mode="before")(lambda v: None if v is None else _decimal(v))


class AccountConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=ACCOUNT_NAME)
    venue: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    #: asset -> starting amount, deposited once
    balances: dict[str, Decimal] = Field(default_factory=dict)
    costs: Costs = Field(default_factory=Costs)
    #: venue-specific settings (e.g. which environment variables hold a live venue's keys)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("balances", mode="before")
    @classmethod
    def _balances(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("balances must map an asset to an amount")
        out: dict[str, Decimal] = {}
        for asset, amount in value.items():
            name = str(asset).strip().upper()
            number = _decimal(amount)
            if not 0 <= number <= MAX_VALUE or places(number) > 10:
                raise ValueError(f"{name}: {amount!r} must be between 0 and 1e15 with at most 10 decimals")
            out[name] = number
        return out


class Accounts:
    """The configured accounts by name, and the default one."""

    def __init__(self, accounts: list[AccountConfig], default: str) -> None:
        self._accounts = {a.name: a for a in accounts}
        if default not in self._accounts:
            raise ConfigError(f"default account {default!r} is not declared (accounts: {', '.join(self._accounts)})")
        self.default = default

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._accounts.values())

    def names(self) -> list[str]:
        return list(self._accounts)

    def get(self, name: str | None, *, field: str = "account") -> AccountConfig:
        """The account called ``name`` (the default when None); INVALID_PARAMS naming the known ones otherwise."""
        found = self._accounts.get(name if name is not None else self.default)
        if found is None:
            known = ", ".join(self._accounts)
            raise InvalidParams(f"unknown account {name!r}; accounts: {known}",
                                details=[{"field": field, "message": f"must be one of: {known}"}])
        return found

    def for_venue(self, venue: str) -> AccountConfig:
        """The default account if it trades on ``venue``, else the first account that does."""
        default = self._accounts[self.default]
        if default.venue == venue:
            return default
        for account in self._accounts.values():
            if account.venue == venue:
                return account
        venues = ", ".join(sorted({a.venue for a in self._accounts.values()}))
        raise InvalidParams(f"no account trades on venue {venue!r}; venues: {venues}",
                            details=[{"field": "venue", "message": f"must be one of: {venues}"}])

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], *, origin: str = "trading_config.yaml") -> Accounts:
        section = raw.get("accounts")
        if section is None:
            section = {"paper": {"venue": "paper"}}
        if not isinstance(section, dict) or not section:
            raise ConfigError(f"{origin}: 'accounts' must map account names to their settings")
        default = str(raw.get("default_account") or next(iter(section)))
        accounts = []
        for name, body in section.items():
            if not isinstance(body, dict):
                raise ConfigError(f"{origin}: accounts.{name} must be a mapping")
            try:
                accounts.append(AccountConfig.model_validate({"name": str(name), **body}))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                raise ConfigError(f"{origin}: accounts.{name}: {problems}") from None
        return cls(accounts, default)


def load_accounts(path: Path | None = None) -> Accounts:
    raw, origin = read_trading_config(path)
    return Accounts.from_mapping(raw, origin=origin)
