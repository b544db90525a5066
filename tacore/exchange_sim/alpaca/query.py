"""The query of ``GET /v2/stocks/bars`` (and the single-symbol route), checked as Alpaca checks it.

``start``/``end`` take RFC-3339 (any offset, up to nanoseconds) or a bare date (New York midnight for
``start``, the end of that New York day for ``end``). Defaults: ``start`` the beginning of the current
New York day, ``end`` now, or 15 minutes ago for SIP data on a plan without real-time SIP. A bad
value is HTTP 400 ``{"code": 40010001, "message": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tacore.exchange_sim.alpaca.payloads import rfc3339_nano
from tacore.exchange_sim.alpaca.sessions import NEW_YORK
from tacore.exchange_sim.alpaca.timeframes import TOKEN_CODES, Timeframe, parse_timeframe

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
FEEDS = frozenset({"sip", "iex", "otc", "boats"})
ADJUSTMENTS = frozenset({"raw", "split", "dividend", "spin-off", "all"})
SIP_DELAY_MS = 15 * 60_000
_RFC3339_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
BAD_REQUEST = 40010001


class AlpacaError(Exception):
    """An error Alpaca answers with an HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _bad(message: str) -> AlpacaError:
    return AlpacaError(400, BAD_REQUEST, message)


@dataclass(frozen=True, slots=True)
class BarsQuery:
    symbols: tuple[str, ...]  # sorted, unique: the order of the multi-symbol response
    timeframe: Timeframe
    start_ms: int
    end_ms: int
    limit: int
    descending: bool
    feed: str
    currency: str | None
    after: tuple[str, int] | None  # from page_token: continue after this symbol's bar at this time


def parse_time(value: str, name: str, *, end_of_day: bool = False) -> int:
    """Epoch ms of an RFC-3339 time or a date (New York day)."""
    if _DATE_RE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise _bad(f"invalid {name}") from None
        if end_of_day:
            nxt = datetime.combine(day + timedelta(days=1), time(), NEW_YORK)
            return int(nxt.timestamp() * 1000) - 1
        return int(datetime.combine(day, time(), NEW_YORK).timestamp() * 1000)
    match = _RFC3339_RE.match(value)
    if match is None:
        raise _bad(f"invalid {name}")
    day_part, clock, fraction, zone = match.groups()
    try:
        stamp = datetime.fromisoformat(f"{day_part}T{clock}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        raise _bad(f"invalid {name}") from None
    millis = int((fraction or ".0")[1:].ljust(9, "0")[:3])
    return int(stamp.timestamp()) * 1000 + millis


def encode_page_token(symbol: str, timeframe: Timeframe, t_ms: int) -> str:
    """Alpaca's token shape: base64 of ``SYMBOL|<unit letter>|<RFC-3339 ns>`` of the last bar sent."""
    raw = f"{symbol}|{TOKEN_CODES[timeframe.unit]}|{rfc3339_nano(t_ms)}"
    return base64.b64encode(raw.encode()).decode()


def decode_page_token(token: str, query_symbols: tuple[str, ...], timeframe: Timeframe) -> tuple[str, int]:
    try:
        symbol, code, stamp = base64.b64decode(token, validate=True).decode().split("|")
        t_ms = parse_time(stamp, "page_token")
    except (binascii.Error, UnicodeDecodeError, ValueError, AlpacaError):
        raise _bad("invalid page token") from None
    if symbol not in query_symbols or code != TOKEN_CODES[timeframe.unit]:
        raise _bad("invalid page token")
    return symbol, t_ms


def parse_bars_query(params: Mapping[str, str], now_ms: int, *, sip_allowed: bool,
                     symbols: list[str] | None = None) -> BarsQuery:
    """Check a bars request. ``symbols`` comes from the path on the single-symbol route."""
    if symbols is None:
        raw = params.get("symbols", "")
        if not raw.strip():
            raise _bad("missing symbols")
        symbols = [s.strip() for s in raw.split(",") if s.strip()]
    for symbol in symbols:
        if not symbol or len(symbol) > 21 or not all(ch.isalnum() or ch in "./" for ch in symbol):
            raise _bad(f"invalid symbol: {symbol}")
    tf_text = params.get("timeframe")
    if not tf_text:
        raise _bad("missing timeframe")
    timeframe = parse_timeframe(tf_text)
    if timeframe is None:
        raise _bad("invalid timeframe")
    feed = params.get("feed") or ("sip" if sip_allowed else "iex")
    if feed not in FEEDS:
        raise _bad("invalid feed")
    limit = DEFAULT_LIMIT
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise _bad("invalid limit") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise _bad(f"invalid limit, limit must be between 1 and {MAX_LIMIT}")
    sort = params.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise _bad("invalid sort")
    for part in (params.get("adjustment") or "raw").split(","):
        if part.strip() not in ADJUSTMENTS:
            raise _bad("invalid adjustment")
    asof = params.get("asof")
    if asof and asof != "-" and not _DATE_RE.match(asof):
        raise _bad("invalid asof")
    currency = params.get("currency") or None
    if currency is not None and (not _CURRENCY_RE.match(currency) or currency != "USD"):
        raise _bad("invalid currency")  # the simulator prices in USD only
    realtime = feed != "sip" or sip_allowed
    default_end = now_ms if realtime else now_ms - SIP_DELAY_MS
    end = parse_time(params["end"], "end", end_of_day=True) if params.get("end") else default_end
    if params.get("start"):
        start = parse_time(params["start"], "start")
    else:
        today = datetime.fromtimestamp(now_ms / 1000, NEW_YORK).date()
        start = int(datetime.combine(today, time(), NEW_YORK).timestamp() * 1000)
        start = min(start, default_end)
    if end < start:
        raise _bad("end should not be before start")
    if not realtime and end > now_ms - SIP_DELAY_MS:
        raise AlpacaError(403, 40310000, "subscription does not permit querying recent SIP data")
    ordered = tuple(sorted(dict.fromkeys(symbols)))
    after = decode_page_token(params["page_token"], ordered, timeframe) if params.get("page_token") else None
    return BarsQuery(ordered, timeframe, start, end, limit, sort == "desc", feed, currency, after)
