"""Markets from trading_config.yaml: which market a symbol trades on, calendars, bars per year."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tacore.errors import ConfigError, InvalidParams
from tacore.markets import AlwaysOpen, MarketRegistry, load_markets
from tests.support.processes import ROOT


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def markets() -> MarketRegistry:
    return load_markets(ROOT / "config" / "trading_config.yaml")


def test_packaged_defaults_equal_the_config_file() -> None:
    shipped = (ROOT / "tacore/defaults/trading_config.yaml").read_text()
    assert (ROOT / "config/trading_config.yaml").read_text() == shipped
    assert load_markets(None).names() == ["CRYPTO", "US"]


def test_symbols_are_assigned_to_their_market(markets: MarketRegistry) -> None:
    assert markets.market_of("AAPL").name == "US"  # type: ignore[union-attr]
    assert markets.market_of("IBM").name == "US"  # type: ignore[union-attr]
    assert markets.market_of("BRK.B").name == "US"  # type: ignore[union-attr]
    assert markets.market_of("BTCUSDT").name == "CRYPTO"  # type: ignore[union-attr]
    assert markets.market_of("ETHBTC").name == "CRYPTO"  # type: ignore[union-attr]
    assert markets.market_of("NOT_A_SYMBOL") is None


def test_unknown_market_is_invalid_params_listing_the_known_ones(markets: MarketRegistry) -> None:
    with pytest.raises(InvalidParams) as err:
        markets.get("EU")
    assert "CRYPTO, US" in err.value.message
    assert err.value.details[0]["known"] == ["CRYPTO", "US"]
    assert markets.get("us").name == "US"


def test_nyse_calendar_knows_holidays_and_early_closes(markets: MarketRegistry) -> None:
    nyse = markets.get("US").calendar
    assert nyse.is_open(_ms("2025-07-03T15:00:00"))  # regular session
    assert not nyse.is_open(_ms("2025-07-04T15:00:00"))  # Independence Day
    assert not nyse.is_open(_ms("2025-07-05T15:00:00"))  # Saturday
    assert nyse.session_at(_ms("2025-11-28T15:00:00")) == (_ms("2025-11-28T14:30:00"), _ms("2025-11-28T18:00:00"))
    assert nyse.next_session(_ms("2025-07-04T12:00:00"))[0] == _ms("2025-07-07T13:30:00")
    assert nyse.previous_session(_ms("2025-07-07T12:00:00"))[1] == _ms("2025-07-03T17:00:00")  # early close
    mask = nyse.open_mask(np.array([_ms("2025-07-03T15:00:00"), _ms("2025-07-04T15:00:00")], dtype=np.int64))
    assert mask.tolist() == [True, False]
    assert 250 < nyse.sessions_per_year < 254


def test_bars_per_year_follow_the_calendar(markets: MarketRegistry) -> None:
    assert markets.get("CRYPTO").bars_per_year("1d") == pytest.approx(365.25)
    assert markets.get("CRYPTO").bars_per_year("1h") == pytest.approx(365.25 * 24)
    assert 250 < markets.get("US").bars_per_year("1d") < 254
    us = markets.get("US")
    assert us.bars_per_year("1h") == pytest.approx(us.bars_per_year("1d") * 6.47, rel=0.01)


def test_always_open_sessions_are_utc_days() -> None:
    cal = AlwaysOpen()
    start = _ms("2025-07-04T00:00:00")
    assert cal.session_at(start + 5) == (start, start + 86_400_000)
    assert len(cal.sessions(start, start + 3 * 86_400_000)) == 3


def test_the_last_days_trading_time_spans_weekends_holidays_and_early_closes(markets: MarketRegistry) -> None:
    nyse, minute = markets.get("US").calendar, 60_000
    # Monday 2025-07-07, half an hour into the session: that half hour, all of Thursday's early-closing session
    # (Friday was Independence Day), and the last 150 minutes of Wednesday's: 390 minutes of trading
    monday = nyse.trading_window(_ms("2025-07-07T14:00:00"), 390 * minute)
    assert monday == [(_ms("2025-07-02T17:30:00"), _ms("2025-07-02T20:00:00")),
                      (_ms("2025-07-03T13:30:00"), _ms("2025-07-03T17:00:00")),
                      (_ms("2025-07-07T13:30:00"), _ms("2025-07-07T14:00:00"))]
    assert sum(stop - start for start, stop in monday) == 390 * minute
    # on a Saturday: Friday's whole session
    assert nyse.trading_window(_ms("2025-07-12T12:00:00"), 390 * minute) == [
        (_ms("2025-07-11T13:30:00"), _ms("2025-07-11T20:00:00"))]
    assert nyse.trading_window(_ms("2000-01-03T15:00:00"), 390 * minute) == []  # before the calendar's history
    # 24/7: the last 1,440 minutes before the end
    end = _ms("2025-07-06T10:00:30")
    assert AlwaysOpen().trading_window(end, 1440 * minute) == [(end - 1440 * minute, end)]


def test_a_bad_market_declaration_stops_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "trading.yaml"
    bad.write_text("markets:\n  EU: {source: nowhere, calendar: XLON, quote_currency: EUR, symbol_pattern: x}\n")
    with pytest.raises(ConfigError, match=r"markets\.EU"):
        load_markets(bad)
