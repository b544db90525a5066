"""Alpaca's historical bars over REST: ``GET /v2/stocks/bars``, paged, within Alpaca's rate limit.

Requests are paced by a sliding window under the plan's 200 a minute; a 429 stops every request until
``X-RateLimit-Reset`` (or ``Retry-After``) and is retried, as are 5xx answers and network errors (with
backoff), so a bar is never given up on. A 401/403 is not retried: it is the key pair, and the feed
reports it. Every answer's ``Date`` header is the server's clock, which decides whether the last bar
of a page is still running. The secret key travels in a header and is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from workers.ingest.limits import Backoff, SlidingWindow

log = logging.getLogger("tacore.ingest.alpaca.rest")

BARS_PATH = "/v2/stocks/bars"
LATEST_PATH = "/v2/stocks/bars/latest"
PAGE_LIMIT = 10_000
#: a 429 without rate headers waits this long
_DEFAULT_WAIT_S = 5.0


class AlpacaAuthError(Exception):
    """The key pair was refused (HTTP 401/403): retrying cannot help."""


class AlpacaRequestError(Exception):
    """Alpaca refused the request's parameters (HTTP 400/422/404)."""


@dataclass(slots=True)
class RestStats:
    requests: int = 0
    pages: int = 0
    bars: int = 0
    throttled: int = 0  # 429 answers
    throttled_wait_s: float = 0.0
    failures: int = 0  # network errors and 5xx, retried
    last_error: str | None = None
    server_ms: int = 0  # the newest Date header seen
    status_counts: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BarsPage:
    bars: dict[str, list[dict[str, Any]]]
    next_page_token: str | None
    server_ms: int  # the server's clock when it answered (Date header), 0 when absent


class AlpacaRest:
    def __init__(self, base_url: str, key_id: str, secret_key: str, *, feed: str, requests_per_min: int = 190,
                 page_limit: int = PAGE_LIMIT, timeout_s: float = 15.0) -> None:
        self.feed = feed
        self.page_limit = page_limit
        self.stats = RestStats()
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, headers={
            "APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key, "Accept": "application/json"})
        self._window = SlidingWindow(max(1, requests_per_min), 60.0)
        self._blocked_until = 0.0

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def throttled_for_s(self) -> float:
        return max(0.0, self._blocked_until - time.monotonic())

    async def bars_page(self, symbols: list[str], timeframe: str, start: str, end: str | None = None,
                        page_token: str | None = None, limit: int | None = None) -> BarsPage:
        """One page of ``/v2/stocks/bars`` (symbols alphabetical, each in time order)."""
        params: dict[str, Any] = {"symbols": ",".join(sorted(symbols)), "timeframe": timeframe, "start": start,
                                  "limit": limit or self.page_limit, "feed": self.feed, "adjustment": "raw",
                                  "sort": "asc"}
        if end is not None:
            params["end"] = end
        if page_token:
            params["page_token"] = page_token
        body, server_ms = await self._get(BARS_PATH, params)
        bars = body.get("bars") or {}
        if not isinstance(bars, dict):
            raise AlpacaRequestError(f"unexpected bars payload: {type(bars).__name__}")
        token = body.get("next_page_token")
        self.stats.pages += 1
        self.stats.bars += sum(len(v) for v in bars.values() if isinstance(v, list))
        return BarsPage(bars, token if isinstance(token, str) and token else None, server_ms)

    async def bars(self, symbols: list[str], timeframe: str, start: str,
                   end: str | None = None) -> AsyncIterator[BarsPage]:
        """Every page of a request, following ``next_page_token``."""
        token: str | None = None
        while True:
            page = await self.bars_page(symbols, timeframe, start, end, token)
            yield page
            if page.next_page_token is None:
                return
            token = page.next_page_token

    async def latest(self, symbols: list[str]) -> tuple[dict[str, dict[str, Any]], int]:
        """The newest minute bar of each symbol Alpaca lists (unknown symbols are absent)."""
        body, server_ms = await self._get(LATEST_PATH, {"symbols": ",".join(symbols), "feed": self.feed})
        bars = body.get("bars") or {}
        return (bars if isinstance(bars, dict) else {}), server_ms

    async def _get(self, path: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        backoff = Backoff(0.5, 30.0)
        while True:
            wait = self._blocked_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._window.acquire()
            self.stats.requests += 1
            try:
                response = await self._client.get(path, params=params)
            except httpx.HTTPError as exc:
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("alpaca %s: %s", path, self.stats.last_error)
                await asyncio.sleep(backoff.next_delay())
                continue
            status = response.status_code
            self.stats.status_counts[status] = self.stats.status_counts.get(status, 0) + 1
            server_ms = _date_ms(response)
            self.stats.server_ms = max(self.stats.server_ms, server_ms)
            if status == 200:
                body = response.json()
                return (body if isinstance(body, dict) else {}), server_ms
            message = _message(response)
            if status == 429:
                wait_s = _reset_wait_s(response)
                self.stats.throttled += 1
                self.stats.throttled_wait_s += wait_s
                self._blocked_until = max(self._blocked_until, time.monotonic() + wait_s)
                log.warning("alpaca rate limit (%s): waiting %.1f s", message, wait_s)
                continue
            self.stats.last_error = f"HTTP {status}: {message}"
            if status in (401, 403):
                raise AlpacaAuthError(f"Alpaca refused the key pair (HTTP {status}: {message})")
            if status in (400, 404, 422):
                raise AlpacaRequestError(f"HTTP {status}: {message}")
            self.stats.failures += 1
            log.warning("alpaca %s: HTTP %d %s; retrying", path, status, message)
            await asyncio.sleep(backoff.next_delay())


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", body))[:200] if isinstance(body, dict) else str(body)[:200]


def _date_ms(response: httpx.Response) -> int:
    value = response.headers.get("Date")
    if not value:
        return 0
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError):
        return 0


def _reset_wait_s(response: httpx.Response) -> float:
    """Seconds until the quota refills: ``Retry-After``, else ``X-RateLimit-Reset`` against ``Date``."""
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    reset = response.headers.get("X-RateLimit-Reset")
    if reset is not None:
        try:
            return min(60.0, max(0.5, float(reset) - time.time()))
        except ValueError:
            pass
    return _DEFAULT_WAIT_S
