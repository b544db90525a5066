"""One page of a bars request: symbols in alphabetical order, each symbol's bars in time order, at most
``limit`` bars in all (the limit counts across symbols, as Alpaca's does).

``next_page_token`` names the last bar sent; the next page continues right after it, with the same
symbol's later bars and then the following symbols. It is null exactly when nothing is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from tacore.exchange_sim.alpaca.bars import BarColumns
from tacore.exchange_sim.alpaca.market import UsMarket
from tacore.exchange_sim.alpaca.query import BarsQuery, encode_page_token


@dataclass(frozen=True, slots=True)
class BarsPage:
    bars: dict[str, BarColumns]  # only symbols with bars on this page
    next_page_token: str | None


def _span_after(query: BarsQuery, symbol: str) -> tuple[int, int]:
    """The [start, end] still to serve for ``symbol`` given the page token."""
    start, end = query.start_ms, query.end_ms
    if query.after is not None and query.after[0] == symbol:
        if query.descending:
            end = min(end, query.after[1] - 1)
        else:
            start = max(start, query.after[1] + 1)
    return start, end


def collect_page(market: UsMarket, query: BarsQuery, now_ms: int) -> BarsPage:
    """The bars of one page and the token for the next (None when done)."""
    symbols = list(query.symbols)
    if query.after is not None:
        symbols = symbols[symbols.index(query.after[0]):]
    symbols = [s for s in symbols if market.is_listed(s)]
    if query.feed not in ("sip", "iex"):  # valid feeds the simulated tickers have no data on
        return BarsPage({}, None)
    out: dict[str, BarColumns] = {}
    left = query.limit
    last: tuple[str, int] | None = None
    for n, symbol in enumerate(symbols):
        start, end = _span_after(query, symbol)
        if left == 0:
            rest = [symbol, *symbols[n + 1:]]
            more = any(len(_fetch(market, query, s, *_span_after(query, s), now_ms, 1)) for s in rest)
            return BarsPage(out, _token(query, last) if more else None)
        cols = _fetch(market, query, symbol, start, end, now_ms, left + 1)
        if len(cols) > left:
            cols = cols.take(slice(0, left))
            out[symbol] = cols
            return BarsPage(out, _token(query, (symbol, int(cols.start[-1]))))
        if len(cols):
            out[symbol] = cols
            left -= len(cols)
            last = (symbol, int(cols.start[-1]))
    return BarsPage(out, None)


def _fetch(market: UsMarket, query: BarsQuery, symbol: str, start: int, end: int, now_ms: int,
           limit: int) -> BarColumns:
    return market.bars(symbol, query.timeframe, query.feed, start, end, now_ms, descending=query.descending,
                       limit=limit)


def _token(query: BarsQuery, last: tuple[str, int] | None) -> str | None:
    return None if last is None else encode_page_token(last[0], query.timeframe, last[1])
