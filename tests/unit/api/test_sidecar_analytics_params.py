"""The analytics routes' own parsing (books in a query string), and the dashboard's price columns."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.exceptions import RequestValidationError

from tacore.api.routes.analytics import _book
from tacore.api.routes.dashboard import with_prices


def test_a_book_in_the_query_keeps_each_amount_as_written() -> None:
    assert _book("portfolio", ["AAPL:100", "GOOGL:50.25,btcusdt:-0.5"]) == {
        "AAPL": "100", "GOOGL": "50.25", "btcusdt": "-0.5"}
    assert _book("portfolio", None) is None and _book("portfolio", []) is None


@pytest.mark.parametrize("item", ["AAPL", "AAPL:", ":5", "AAPL:ten", "AAPL:NaN", "AAPL:inf"])
def test_a_malformed_position_is_a_422_on_its_parameter(item: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        _book("weights", [item])
    error = caught.value.errors()[0]
    assert error["loc"] == ("query", "weights") and "SYMBOL:AMOUNT" in error["msg"]


def test_a_book_too_long_for_a_query_points_to_post() -> None:
    with pytest.raises(RequestValidationError, match="POST /risk"):
        _book("portfolio", [",".join(f"S{i}:1" for i in range(201))])


def test_the_sidecar_validates_without_loading_the_analytics_libraries() -> None:
    """The params models it imports are light: numpy, TA-Lib and openai stay out of the sidecar's process."""
    probe = ("import sys, tacore.api.app; "
             "print(sorted(m for m in ('numpy', 'talib', 'openai', 'scipy', 'chdb') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]"


def test_symbol_rows_get_their_price_and_24h_change_when_the_agent_has_them() -> None:
    rows = [{"symbol": "BTCUSDT"}, {"symbol": "AAPL"}, {"symbol": "NEWUSDT"}]
    market = {"BTCUSDT": {"status": "ok", "market": "CRYPTO", "price": 66_000.5, "change_24h": 660.0,
                          "change_24h_pct": 1.01, "high_24h": 67_000.0, "low_24h": 65_000.0,
                          "quote_volume_24h": 1e9, "event_time": 1},
              "AAPL": {"status": "no_data", "market": "US"}}
    out = {r["symbol"]: r for r in with_prices(rows, market)}
    assert out["BTCUSDT"]["price"] == 66_000.5 and out["BTCUSDT"]["change_24h_pct"] == 1.01
    assert out["BTCUSDT"]["market_status"] == "ok"
    assert out["AAPL"]["market_status"] == "no_data" and out["AAPL"]["market"] == "US"
    assert out["AAPL"]["price"] is None and out["AAPL"]["change_24h_pct"] is None
    assert out["NEWUSDT"]["market_status"] is None and out["NEWUSDT"]["price"] is None
