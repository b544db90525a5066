"""The simulated US-equities universe: which tickers trade, at what price level and daily volume.

Levels are those of late 2024 (AAPL near 230, MSFT 420, NVDA 130 after its split, ...), daily share
volumes of the consolidated tape (tens of millions for the mega caps). A ticker without a known
profile gets one derived from the seed and its name, like the Binance side's symbols do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: ticker -> (reference price in USD, average daily volume in shares, SIP)
KNOWN_PROFILES: dict[str, tuple[float, float]] = {
    "AAPL": (230.0, 52e6), "MSFT": (420.0, 20e6), "GOOGL": (165.0, 25e6), "AMZN": (185.0, 42e6),
    "NVDA": (130.0, 250e6), "META": (560.0, 14e6), "TSLA": (250.0, 90e6), "AVGO": (170.0, 22e6),
    "JPM": (220.0, 9e6), "V": (280.0, 7e6), "MA": (500.0, 3e6), "UNH": (580.0, 4e6),
    "JNJ": (160.0, 7e6), "WMT": (80.0, 16e6), "PG": (170.0, 7e6), "XOM": (115.0, 15e6),
    "HD": (400.0, 3.5e6), "KO": (70.0, 13e6), "PEP": (170.0, 6e6), "COST": (890.0, 2e6),
    "DIS": (95.0, 9e6), "NFLX": (700.0, 3.5e6), "AMD": (150.0, 40e6), "INTC": (22.0, 50e6),
    "CSCO": (55.0, 18e6), "ORCL": (170.0, 8e6), "CRM": (290.0, 6e6), "ADBE": (500.0, 3e6),
    "BAC": (42.0, 35e6), "IBM": (220.0, 4e6),
}
#: Alpaca's always-open test stream symbol (``/v2/test``)
TEST_SYMBOL = "FAKEPACA"
_TICKER_RE = re.compile(r"^[A-Z]{1,5}([.][A-Z]{1,2})?$")


@dataclass(frozen=True, slots=True)
class UsProfile:
    """The constants of one ticker's simulated market."""

    symbol: str
    key: int  # 64-bit noise key
    price_cents: float  # reference price
    daily_volume: float  # shares per full session on the consolidated tape (SIP)
    trade_size: float  # average shares per trade
    iex_share: float  # IEX's average share of the volume


def make_us_profile(symbol: str, seed: int) -> UsProfile:
    """Derive a ticker's constants deterministically (hashlib, never Python's salted hash)."""
    digest = hashlib.blake2b(f"{seed}:us:{symbol}".encode(), digest_size=32).digest()
    key = int.from_bytes(digest[:8], "little")
    r_price = int.from_bytes(digest[8:16], "little") / 2.0**64
    r_volume = int.from_bytes(digest[16:24], "little") / 2.0**64
    r_size = int.from_bytes(digest[24:32], "little") / 2.0**64
    price, volume = KNOWN_PROFILES.get(symbol, (10.0 ** (1.0 + 1.7 * r_price), 10.0 ** (6.0 + 1.3 * r_volume)))
    return UsProfile(symbol, key, price * 100.0, volume, 60.0 + 90.0 * r_size, 0.02 + 0.015 * r_price)


def is_ticker(symbol: str) -> bool:
    """Whether ``symbol`` is shaped like a US ticker (``AAPL``, ``BRK.B``)."""
    return bool(_TICKER_RE.match(symbol))


def default_universe() -> frozenset[str]:
    """The tickers of the ``US`` market in the packaged trading config (the simulator's listing)."""
    from tacore.markets import load_markets

    for market in load_markets(None):
        if market.source.value == "alpaca":
            return frozenset(market.universe)
    return frozenset(KNOWN_PROFILES)


def us_calendar_name() -> str:
    """The trading calendar of the packaged ``US`` market (``XNYS``)."""
    from tacore.markets import load_markets

    for market in load_markets(None):
        if market.source.value == "alpaca":
            return market.calendar_name
    return "XNYS"
