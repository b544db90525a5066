"""Binance's error answers mapped to TACore's venue error codes, and whether the order may be placed."""

from __future__ import annotations

import pytest

from tacore.trading.venues.base import VenueErrorCode
from tacore.trading.venues.binance_errors import BinanceApiError, TransportFailure, venue_error

C = VenueErrorCode


@pytest.mark.parametrize(("status", "code", "msg", "expected"), [
    (400, -2010, "Account has insufficient balance for requested action.", C.REJECTED),
    (400, -1013, "Filter failure: LOT_SIZE", C.FILTER),
    (400, -1021, "Timestamp for this request is outside of the recvWindow.", C.CLOCK_SKEW),
    (429, -1003, "Too much request weight used", C.RATE_LIMITED),
    (418, -1003, "Way too much request weight used; IP banned", C.RATE_LIMITED),
    (429, -1015, "Too many new orders", C.RATE_LIMITED),
    (400, -1022, "Signature for this request is not valid.", C.AUTH),
    (401, -2014, "API-key format invalid.", C.AUTH),
    (401, -2015, "Invalid API-key, IP, or permissions for action.", C.AUTH),
    (400, -2011, "Unknown order sent.", C.UNKNOWN_ORDER),
    (400, -2013, "Order does not exist.", C.UNKNOWN_ORDER),
    (400, -1100, "Illegal characters found in parameter 'quantity'", C.REJECTED),
    (400, -1102, "Mandatory parameter 'price' was not sent", C.REJECTED),
    (400, -1121, "Invalid symbol.", C.REJECTED),
    (503, -1007, "Timeout waiting for response from backend server.", C.UNAVAILABLE),
    (500, -1000, "An unknown error occurred", C.UNAVAILABLE),
])
def test_each_binance_error_maps_to_its_venue_code(status: int, code: int, msg: str, expected: C) -> None:
    error = venue_error(BinanceApiError(status, code, msg, 7.0 if status in (418, 429) else None),
                        changes_state=True)
    assert error.code is expected
    assert error.venue_code == code
    assert msg in error.message


def test_rate_limits_carry_the_wait_binance_asked_for() -> None:
    error = venue_error(BinanceApiError(418, -1003, "banned", 120.0), changes_state=False)
    assert error.retry_after_s == 120.0 and "banned" in error.message and not error.outcome_unknown


def test_only_a_failure_after_sending_an_order_change_leaves_its_outcome_unknown() -> None:
    assert venue_error(BinanceApiError(503, -1007, "timeout"), changes_state=True).outcome_unknown
    assert not venue_error(BinanceApiError(503, -1007, "timeout"), changes_state=False).outcome_unknown
    assert venue_error(TransportFailure(True, "read timeout"), changes_state=True).outcome_unknown
    assert not venue_error(TransportFailure(False, "refused"), changes_state=True).outcome_unknown
    assert not venue_error(BinanceApiError(400, -2010, "no"), changes_state=True).outcome_unknown


def test_duplicate_client_order_id_is_recognised() -> None:
    assert BinanceApiError(400, -2010, "Duplicate order sent.").duplicate_order
    assert not BinanceApiError(400, -2010, "Account has insufficient balance for requested action.").duplicate_order
