"""Binance's answers that are not a success, and what each means to TACore (``VenueError`` codes).

| Binance | TACore | placed? |
| --- | --- | --- |
| -2010 NEW_ORDER_REJECTED (insufficient balance, would trigger immediately, ...) | REJECTED | no |
| -1013 filter failure (``Filter failure: LOT_SIZE``, ...) | FILTER | no |
| -1021 timestamp outside recvWindow (after one resync and retry) | CLOCK_SKEW | no |
| HTTP 429 / 418, -1003, -1015 | RATE_LIMITED, with ``Retry-After`` | no |
| -1022 bad signature, -2014 / -2015 / -1002 key or permission | AUTH | no |
| -2011 CANCEL_REJECTED (``Unknown order sent.``), -2013 NO_SUCH_ORDER | UNKNOWN_ORDER | -- |
| -1100, -1102 and the other -11xx bad parameters, -1121 bad symbol | REJECTED | no |
| HTTP 5xx, -1000, -1001, -1006, -1007, -1008; no answer after sending | UNAVAILABLE | unknown |

An order request that failed after it was sent (a 5xx, a timeout, a dropped connection) may have been
carried out (Binance: "the execution status is UNKNOWN and could have been a success"):
``outcome_unknown`` is set and the venue asks the exchange by client order id instead of sending again.
"""

from __future__ import annotations

from dataclasses import dataclass

from tacore.trading.venues.base import VenueError, VenueErrorCode

#: -1000 UNKNOWN, -1001 DISCONNECTED, -1006 UNEXPECTED_RESP, -1007 TIMEOUT, -1008 SERVER_BUSY, -1016 SHUTTING_DOWN
_SERVER_CODES = frozenset({-1000, -1001, -1006, -1007, -1008, -1016})
_AUTH_CODES = frozenset({-1002, -1022, -2014, -2015})
_RATE_CODES = frozenset({-1003, -1015})


class BinanceApiError(Exception):
    """Binance answered ``{"code", "msg"}`` with an error status."""

    def __init__(self, status: int, code: int | None, msg: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.retry_after_s = retry_after_s

    @property
    def duplicate_order(self) -> bool:
        """-2010 ``Duplicate order sent.``: an open order already carries this client order id."""
        return self.code == -2010 and "Duplicate order" in self.msg


@dataclass
class TransportFailure(Exception):
    """No answer: ``sent`` says whether the request may have reached the exchange."""

    sent: bool
    detail: str

    def __str__(self) -> str:
        return self.detail


def venue_error(exc: BinanceApiError | TransportFailure, *, changes_state: bool) -> VenueError:
    """The ``VenueError`` for a failed call; ``changes_state``: the call places or cancels an order."""
    if isinstance(exc, TransportFailure):
        outcome = "; the exchange may have carried it out" if exc.sent and changes_state else ""
        return VenueError(VenueErrorCode.UNAVAILABLE, f"Binance did not answer ({exc.detail}){outcome}",
                          outcome_unknown=exc.sent and changes_state)
    code, msg = exc.code, exc.msg
    if exc.status in (429, 418) or code in _RATE_CODES:
        wait = f"; retry after {exc.retry_after_s:g} s" if exc.retry_after_s is not None else ""
        banned = " (IP banned)" if exc.status == 418 else ""
        return VenueError(VenueErrorCode.RATE_LIMITED, f"Binance rate limit{banned}: {msg}{wait}",
                          retry_after_s=exc.retry_after_s, venue_code=code)
    if code == -1021:
        return VenueError(VenueErrorCode.CLOCK_SKEW, f"Binance: {msg}", venue_code=code)
    if code in _AUTH_CODES or exc.status == 401:
        return VenueError(VenueErrorCode.AUTH, f"Binance refused the API key: {msg}", venue_code=code)
    if code == -1013:
        return VenueError(VenueErrorCode.FILTER, f"Binance: {msg}", venue_code=code)
    if code in (-2011, -2013) and ("Unknown order" in msg or code == -2013):
        return VenueError(VenueErrorCode.UNKNOWN_ORDER, f"Binance: {msg}", venue_code=code)
    if exc.status >= 500 or code in _SERVER_CODES:
        outcome = "; the exchange may have carried it out" if changes_state else ""
        return VenueError(VenueErrorCode.UNAVAILABLE, f"Binance failed: {msg}{outcome}",
                          outcome_unknown=changes_state, venue_code=code)
    if code is not None and -1199 <= code <= -1100:
        return VenueError(VenueErrorCode.REJECTED, f"Binance refused a parameter: {msg}", venue_code=code)
    return VenueError(VenueErrorCode.REJECTED, f"Binance: {msg}", venue_code=code)
