"""A small synchronous client of Binance's spot REST API (httpx): public and SIGNED requests.

- SIGNED requests carry ``timestamp`` (the local clock plus the offset to the exchange's, measured with
  ``GET /api/v3/time``), ``recvWindow`` and ``signature`` in the query string and the key in
  ``X-MBX-APIKEY``. A -1021 (timestamp outside recvWindow) resyncs the offset and retries once: the
  exchange refused the request before processing it, so sending it again cannot place anything twice.
- HTTP 429 / 418 close a gate until ``Retry-After`` has passed: no request is sent meanwhile (each call
  fails at once with the time left), since sending through a 429 is what earns a 418 ban. A 429 whose
  wait is at most ``max_wait_s`` is waited out and the request sent once more (it was not processed).
- Every request is logged on ``tacore.venues.binance`` (method, path, parameters with the signature
  masked, status, used weight, time); the key pair never is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from tacore.trading.venues.binance_errors import BinanceApiError, TransportFailure
from tacore.trading.venues.binance_signing import BinanceCredentials, install_httpx_redaction

log = logging.getLogger("tacore.venues.binance")

DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000


class MissingCredentials(Exception):
    """No key pair is configured for a SIGNED request."""


class BinanceRestClient:
    def __init__(self, base_url: str, credentials: BinanceCredentials | None, *, missing_hint: str = "",
                 recv_window_ms: int = DEFAULT_RECV_WINDOW_MS, timeout_s: float = 10.0, max_wait_s: float = 2.0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0 < recv_window_ms <= MAX_RECV_WINDOW_MS:
            raise ValueError(f"recv_window_ms must be in 1..{MAX_RECV_WINDOW_MS}")
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._missing_hint = missing_hint
        self.recv_window_ms = recv_window_ms
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        #: exchange time minus local time, ms (None: not measured yet)
        self.offset_ms: int | None = None
        self._blocked_until = 0.0  # local epoch seconds: no request before (429 / 418)
        self.used_weight: int | None = None
        install_httpx_redaction()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"BinanceRestClient({self.base_url!r})"

    # -- time -----------------------------------------------------------------------------------------------
    def local_ms(self) -> int:
        return int(self._clock() * 1000)

    def server_ms(self) -> int:
        """The exchange's time as we estimate it."""
        return self.local_ms() + (self.offset_ms or 0)

    def sync_time(self) -> int:
        """Measure the offset to the exchange's clock (half the round trip counted each way)."""
        before = self.local_ms()
        body = self.public("GET", "/api/v3/time")
        after = self.local_ms()
        server = int(body["serverTime"])
        offset = server - (before + after) // 2
        if self.offset_ms is None or abs(offset - self.offset_ms) > 100:
            log.info("clock offset to %s: %+d ms (round trip %d ms)", self.base_url, offset, after - before)
        self.offset_ms = offset
        return offset

    # -- requests -------------------------------------------------------------------------------------------
    def public(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._request(method, path, dict(params or {}), signed=False)

    def signed(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """A SIGNED request; one resync and retry on -1021."""
        if self._credentials is None:
            raise MissingCredentials(self._missing_hint or "no Binance API key pair is configured")
        if self.offset_ms is None:
            self.sync_time()
        try:
            return self._request(method, path, dict(params or {}), signed=True)
        except BinanceApiError as exc:
            if exc.code != -1021:
                raise
            log.warning("%s %s: %s; resyncing the clock and retrying once", method, path, exc.msg)
            self.sync_time()
            return self._request(method, path, dict(params or {}), signed=True)

    def _request(self, method: str, path: str, params: dict[str, Any], *, signed: bool) -> Any:
        waited = False
        while True:
            self._gate(method, path)
            query = urlencode(params)
            headers: dict[str, str] = {}
            if signed and self._credentials is not None:
                stamped = f"timestamp={self.server_ms()}&recvWindow={self.recv_window_ms}"
                query = f"{query}&{stamped}" if query else stamped
                query = f"{query}&signature={self._credentials.sign(query)}"
                headers = self._credentials.header()
            started = time.perf_counter()
            response = self._send(method, f"{path}?{query}" if query else path, headers)
            took_ms = (time.perf_counter() - started) * 1000
            weight = response.headers.get("X-MBX-USED-WEIGHT-1M")
            if weight is not None and weight.isdigit():
                self.used_weight = int(weight)
            log.debug("%s %s %s -> %d (weight %s, %.1f ms)", method, path, urlencode(params), response.status_code,
                      weight, took_ms)
            if response.status_code in (429, 418):
                wait = _retry_after(response)
                self._blocked_until = max(self._blocked_until, self._clock() + wait)
                error = _api_error(response, wait)
                log.warning("%s %s: HTTP %d %s; no request for %g s", method, path, response.status_code,
                            error.msg, wait)
                if not waited and response.status_code == 429 and wait <= self.max_wait_s:
                    waited = True  # it was not processed: sending it again after the wait is safe
                    self._sleep(wait)
                    continue
                raise error
            if response.status_code >= 400:
                error = _api_error(response, None)
                log.warning("%s %s %s -> HTTP %d %s %s", method, path, urlencode(params), response.status_code,
                            error.code, error.msg)
                raise error
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError:
                raise TransportFailure(True, f"HTTP {response.status_code} with a body that is not JSON") from None

    def _gate(self, method: str, path: str) -> None:
        left = self._blocked_until - self._clock()
        if left > 0:
            raise BinanceApiError(429, -1003, f"backing off as Binance asked: {left:.1f} s left before "
                                              f"{method} {path} may be sent", retry_after_s=round(left, 1))

    def _send(self, method: str, target: str, headers: dict[str, str]) -> httpx.Response:
        try:
            return self._http.request(method, target, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransportFailure(False, f"cannot connect to {self.base_url}: {type(exc).__name__}") from None
        except httpx.TimeoutException as exc:
            raise TransportFailure(True, f"no answer within the timeout ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise TransportFailure(True, f"the connection failed after sending ({type(exc).__name__})") from None


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 60.0  # Binance always sends it; without it, wait a minute rather than hammer


def _api_error(response: httpx.Response, retry_after: float | None) -> BinanceApiError:
    code: int | None = None
    msg = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        msg = str(body.get("msg", msg))
    return BinanceApiError(response.status_code, code, msg, retry_after)
