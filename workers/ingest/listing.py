"""Whether new symbols are listed on their exchange, asked before they are subscribed.

Otherwise an unlisted symbol would be saved as a subscription that never streams; an add asks first and
answers INVALID_PARAMS naming each unlisted symbol (nothing added). Binance is asked one candle
per symbol over REST (eight at a time), and a symbol it listed once is not asked again; Alpaca is asked
through the US feed. An exchange that cannot answer makes the add UNAVAILABLE (retryable), never a guess.
"""

from __future__ import annotations

import asyncio

import httpx

from tacore.errors import InvalidParams, Unavailable
from workers.ingest.alpaca.feed import AlpacaFeed
from workers.ingest.alpaca.rest import AlpacaAuthError


class BinanceListing:
    """Asks the exchange's REST API, through a client opened on the agent's loop (``open``)."""

    def __init__(self, rest_url: str) -> None:
        self.rest_url = rest_url
        self._http: httpx.AsyncClient | None = None
        self._known: set[str] = set()

    def open(self) -> None:
        self._http = httpx.AsyncClient(base_url=self.rest_url.rstrip("/"), timeout=5.0)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def verify(self, symbols: list[str]) -> None:
        """Ask the exchange about symbols we have not seen: an unlisted one is INVALID_PARAMS."""
        unknown = [s for s in symbols if s not in self._known]
        if not unknown or self._http is None:
            return
        http = self._http
        gate = asyncio.Semaphore(8)

        async def listed(symbol: str) -> str | None:
            async with gate:
                try:
                    response = await http.get("/api/v3/klines",
                                              params={"symbol": symbol, "interval": "1m", "limit": 1})
                except httpx.HTTPError as exc:
                    raise Unavailable(f"cannot check symbols with the exchange: {exc}") from None
            if response.status_code == 200:
                self._known.add(symbol)
                return None
            if response.status_code == 400:
                try:
                    return str(response.json().get("msg", "invalid symbol"))
                except ValueError:
                    return "invalid symbol"
            raise Unavailable(f"cannot check symbols with the exchange: HTTP {response.status_code}")

        answers = await asyncio.gather(*(listed(s) for s in unknown))
        bad = [{"field": "symbols", "symbol": s, "message": f"{s}: {msg}"}
               for s, msg in zip(unknown, answers, strict=True) if msg is not None]
        if bad:
            raise InvalidParams(f"unknown symbol(s) on the exchange: {', '.join(b['symbol'] for b in bad)}; "
                                "nothing added", details=bad)


async def verify_us(us: AlpacaFeed, symbols: list[str], timeout_s: float) -> None:
    """Ask Alpaca for the latest bar of new US symbols: one it does not list is INVALID_PARAMS."""
    if not symbols:
        return
    try:
        unknown = await asyncio.wait_for(us.unknown_symbols(symbols), timeout_s)
    except AlpacaAuthError as exc:
        raise Unavailable(f"cannot check symbols with Alpaca: {exc}") from None
    except (httpx.HTTPError, TimeoutError) as exc:
        raise Unavailable(f"cannot check symbols with Alpaca: {type(exc).__name__}: {exc}") from None
    if unknown:
        raise InvalidParams(f"unknown symbol(s) on Alpaca: {', '.join(unknown)}; nothing added",
                            details=[{"field": "symbols", "symbol": s, "market": us.market,
                                      "message": f"{s}: not listed by Alpaca"} for s in unknown])
