"""Minute generation: symbol profiles and the vectorised block are pure functions of their inputs."""

from __future__ import annotations

import numpy as np

from tacore.exchange_sim.candle import UNITS
from tacore.exchange_sim.minutes import GRID, aggregate, intra_minute, make_profile, minute_block

MINUTE0 = 1_767_225_600_000 // 60_000


def test_profiles_are_stable_and_known_symbols_sit_near_their_real_price() -> None:
    assert make_profile("BTCUSDT", 1) == make_profile("BTCUSDT", 1)
    assert make_profile("BTCUSDT", 1).base_units == 65_000 * UNITS
    assert make_profile("FOOUSDT", 1) != make_profile("FOOUSDT", 2)


def test_tick_and_lot_are_powers_of_ten_scaled_to_price_and_volume() -> None:
    for symbol in ("BTCUSDT", "ETHBTC", "SHIBAUSDT", "ABCBNB", "XYZFDUSD"):
        prof = make_profile(symbol, 0)
        for step in (prof.tick, prof.lot):
            assert step >= 1 and str(step).strip("0") == "1"
        assert prof.tick < prof.base_units / 10_000


def test_a_block_split_in_two_equals_the_block_in_one() -> None:
    prof = make_profile("ETHUSDT", 3)
    whole = minute_block(prof, MINUTE0 + 1000, 120)
    first, second = minute_block(prof, MINUTE0 + 1000, 70), minute_block(prof, MINUTE0 + 1070, 50)
    for name in ("open", "high", "low", "close", "volume", "quote_volume", "trades", "first_trade_id"):
        joined = np.concatenate([getattr(first, name), getattr(second, name)])
        assert np.array_equal(getattr(whole, name), joined), name


def test_intra_minute_paths_run_from_open_to_close_inside_the_minute_range() -> None:
    prof = make_profile("BTCUSDT", 0)
    block = minute_block(prof, MINUTE0, 60)
    candles = aggregate(block, 1, "1m")
    intra = intra_minute(prof, block)
    for i, candle in enumerate(candles):
        path, th, tl = intra.path(i, candle), int(intra.tau_high[i]), int(intra.tau_low[i])
        assert len(path) == GRID + 1 and path[0] == candle.open and path[-1] == candle.close
        assert all(candle.low <= p <= candle.high for p in path)
        assert 0 <= th < 60_000 and 0 <= tl < 60_000
