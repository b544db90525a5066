"""Deterministic candle generation: reproducible, exactly aggregated, live updates converge."""

from __future__ import annotations

import functools
import itertools

import pytest

from tacore.exchange_sim.candle import Candle
from tacore.exchange_sim.intervals import CHILD_INTERVAL, INTERVAL_MS, MINUTE_MS
from tacore.exchange_sim.market import Market
from tacore.exchange_sim.minutes import make_profile

DAY0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _merge(parts: list[Candle], open_time: int, close_time: int) -> Candle:
    return functools.reduce(lambda a, b: a.then(b), parts).with_span(open_time, close_time)


def test_same_seed_gives_the_same_candles_in_a_fresh_market() -> None:
    a = Market(seed=3).closed_range("BTCUSDT", "1h", DAY0, 48)
    b = Market(seed=3).closed_range("BTCUSDT", "1h", DAY0, 48)
    assert a == b


def test_other_seeds_and_symbols_give_other_markets() -> None:
    base = Market(seed=3).closed_range("BTCUSDT", "1m", DAY0, 10)
    assert Market(seed=4).closed_range("BTCUSDT", "1m", DAY0, 10) != base
    assert Market(seed=3).closed_range("ETHUSDT", "1m", DAY0, 10) != base


def test_a_candle_is_the_same_whether_generated_alone_or_in_a_batch() -> None:
    market = Market()
    batch = market.closed_range("SOLUSDT", "1m", DAY0, 500)
    assert [Market().closed("SOLUSDT", "1m", c.open_time) for c in batch[::37]] == batch[::37]


@pytest.mark.parametrize("interval", list(CHILD_INTERVAL))
def test_every_interval_is_the_exact_aggregate_of_its_child_interval(interval: str) -> None:
    market = Market(seed=11)
    child = CHILD_INTERVAL[interval]
    k = INTERVAL_MS[interval] // INTERVAL_MS[child]
    parents = market.closed_range("ETHBTC", interval, DAY0, 2)
    children = market.closed_range("ETHBTC", child, DAY0, 2 * k)
    for i, parent in enumerate(parents):
        assert _merge(children[i * k : (i + 1) * k], parent.open_time, parent.close_time) == parent


def test_candles_are_well_formed_and_on_the_tick_and_lot() -> None:
    market = Market()
    prof = make_profile("BTCUSDT", 0)
    for c in market.closed_range("BTCUSDT", "1m", DAY0, 2000):
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert c.low > 0 and c.close_time == c.open_time + MINUTE_MS - 1
        assert all(v % prof.tick == 0 for v in (c.open, c.high, c.low, c.close))
        assert c.volume % prof.lot == 0 and 0 < c.taker_base <= c.volume
        assert 0 < c.taker_quote <= c.quote_volume
        assert c.last_trade_id - c.first_trade_id + 1 == c.trades > 0


def test_consecutive_candles_chain_open_to_close_and_trade_ids_within_a_day() -> None:
    candles = Market().closed_range("XRPUSDT", "1m", DAY0, 1440)
    for before, after in itertools.pairwise(candles):
        assert after.open == before.close
        assert after.first_trade_id == before.last_trade_id + 1


def test_prices_wander_like_a_market_but_stay_in_a_sane_band() -> None:
    closes = [c.close for c in Market().closed_range("BTCUSDT", "1h", DAY0, 24 * 60)]
    assert len(set(closes)) > 1000
    assert 0.4 < min(closes) / max(closes) < 0.995


def test_open_candle_converges_on_the_closed_candle_and_never_leaves_its_range() -> None:
    market = Market(seed=5)
    for interval in ("1m", "5m", "1h"):
        step = INTERVAL_MS[interval]
        final = market.closed("BNBUSDT", interval, DAY0)
        previous_high = previous_volume = 0
        for offset in range(0, step, step // 50):
            live = market.open_candle("BNBUSDT", interval, DAY0 + offset)
            assert (live.open_time, live.close_time, live.open) == (final.open_time, final.close_time, final.open)
            assert final.low <= live.low <= live.high <= final.high
            assert live.high >= previous_high and live.volume >= previous_volume
            assert live.trades <= final.trades and live.last_trade_id - live.first_trade_id + 1 == live.trades
            previous_high, previous_volume = live.high, live.volume
        last = market.open_candle("BNBUSDT", interval, DAY0 + step - 1)
        assert (last.high, last.low) == (final.high, final.low)


def test_history_of_a_thousand_days_is_generated_quickly_enough_for_rest() -> None:
    import time

    started = time.perf_counter()
    rows = Market().closed_range("BTCUSDT", "1d", DAY0 - 1000 * 86_400_000, 1000)
    assert len(rows) == 1000 and time.perf_counter() - started < 5.0
