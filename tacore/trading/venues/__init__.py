"""Venues by name. An account's ``venue`` in ``trading_config.yaml`` picks the factory that builds its venue.

A factory is ``create_venue(account: AccountConfig, context: VenueContext) -> Venue`` in module
``tacore.trading.venues.<name>`` (``paper``, ``binance``). The paper venue is one instance shared by every
paper account (so the volume cap holds across them); any other venue gets one instance per account.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tacore.errors import ConfigError
from tacore.trading.accounts import AccountConfig, Accounts
from tacore.trading.instruments import Instruments
from tacore.trading.model import Portfolio
from tacore.trading.venues.base import (
    REFUSED_CODES,
    SimulatedVenue,
    Venue,
    VenueBalance,
    VenueError,
    VenueErrorCode,
    VenueFill,
    VenueReport,
)
from tacore.trading.venues.paper import PaperVenue, QuoteSource, wall_clock_ms

__all__ = [
    "REFUSED_CODES",
    "SimulatedVenue",
    "Venue",
    "VenueBalance",
    "VenueContext",
    "VenueError",
    "VenueErrorCode",
    "VenueFill",
    "VenueReport",
    "build_venues",
]


@dataclass(frozen=True, slots=True)
class VenueContext:
    """What a venue may use: the accounts, instruments, the ledger's portfolio (read only), latest prices,
    the clock, and the service settings (``tacore.settings.Settings``: e.g. ``exchange_rest_url``)."""

    accounts: Accounts
    instruments: Instruments
    portfolio: Portfolio
    quotes: QuoteSource
    settings: Any = None
    clock: Callable[[], int] = wall_clock_ms


def build_venues(context: VenueContext) -> dict[str, Venue]:
    """Account name -> its venue."""
    venues: dict[str, Venue] = {}
    paper: PaperVenue | None = None
    for account in context.accounts:
        if account.venue == "paper":
            if paper is None:
                paper = PaperVenue(context.accounts, context.instruments, context.portfolio, context.quotes,
                                   context.clock)
            venues[account.name] = paper
        else:
            venues[account.name] = _factory(account)(account, context)
    return venues


def _factory(account: AccountConfig) -> Callable[[AccountConfig, VenueContext], Venue]:
    try:
        module = importlib.import_module(f"tacore.trading.venues.{account.venue}")
    except ModuleNotFoundError:
        raise ConfigError(f"account {account.name}: unknown venue {account.venue!r}") from None
    factory = getattr(module, "create_venue", None)
    if factory is None:
        raise ConfigError(f"venue module {module.__name__} has no create_venue(account, context)")
    return factory  # type: ignore[no-any-return]
