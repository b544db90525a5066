"""The markets declared in ``trading_config.yaml`` (``TRADING_CONFIG``; the packaged defaults when absent)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tacore.errors import ConfigError, InvalidParams
from tacore.markets.model import Market


class MarketRegistry:
    """Markets by name, in declaration order; ``market_of`` tells which one a symbol trades on."""

    def __init__(self, markets: list[Market], default: str) -> None:
        self._markets = {m.name: m for m in markets}
        if default not in self._markets:
            raise ConfigError(f"default market {default!r} is not declared (markets: {', '.join(self._markets)})")
        self.default = default

    def __iter__(self) -> Iterator[Market]:
        return iter(self._markets.values())

    def names(self) -> list[str]:
        return list(self._markets)

    def get(self, name: str, *, field: str = "market") -> Market:
        """The market called ``name`` (case-insensitive); INVALID_PARAMS naming the known ones otherwise."""
        market = self._markets.get(name.strip().upper())
        if market is None:
            known = ", ".join(self._markets)
            raise InvalidParams(f"unknown market {name!r}; known markets: {known}",
                                details=[{"field": field, "message": f"must be one of: {known}",
                                          "known": list(self._markets)}])
        return market

    def market_of(self, symbol: str) -> Market | None:
        """The market listing ``symbol`` by name, else the first whose pattern matches, else None."""
        for market in self._markets.values():
            if symbol in market.universe:
                return market
        for market in self._markets.values():
            if market.pattern.fullmatch(symbol):
                return market
        return None

    def require_market_of(self, symbol: str, *, field: str = "symbols") -> Market:
        market = self.market_of(symbol)
        if market is None:
            raise InvalidParams(f"{symbol!r} belongs to no market ({', '.join(self._markets)})",
                                details=[{"field": field, "symbol": symbol, "message": "no market lists it"}])
        return market

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], *, origin: str = "trading_config.yaml") -> MarketRegistry:
        section = raw.get("markets")
        if not isinstance(section, dict) or not section:
            raise ConfigError(f"{origin}: a 'markets' mapping is required")
        default = str(raw.get("default_market") or next(iter(section)))
        markets = []
        for name, body in section.items():
            if not isinstance(body, dict):
                raise ConfigError(f"{origin}: markets.{name} must be a mapping")
            try:
                markets.append(Market.model_validate({"name": str(name), **body}))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                raise ConfigError(f"{origin}: markets.{name}: {problems}") from None
        return cls(markets, default)


def read_trading_config(path: Path | None) -> tuple[dict[str, Any], str]:
    """The parsed trading config and where it came from (the file, or the packaged defaults)."""
    if path is not None and path.is_file():
        text, origin = path.read_text(), str(path)
    else:
        text, origin = resources.files("tacore").joinpath("defaults/trading_config.yaml").read_text(), \
            "packaged trading_config.yaml"
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    return raw, origin


def load_markets(path: Path | None = None) -> MarketRegistry:
    raw, origin = read_trading_config(path)
    return MarketRegistry.from_mapping(raw, origin=origin)
