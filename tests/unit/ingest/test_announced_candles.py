"""Each closed candle is announced once; the memory stays bounded and forgets the oldest first."""

from __future__ import annotations

from workers.ingest.announced import AnnouncedCandles


def test_a_candle_is_announced_the_first_time_only() -> None:
    announced = AnnouncedCandles(memory=4)
    assert announced.first(60_000)
    assert not announced.first(60_000)
    assert announced.first(120_000)


def test_past_the_memory_the_oldest_open_time_is_forgotten_and_the_newer_ones_kept() -> None:
    announced = AnnouncedCandles(memory=3)
    for open_time in (1, 2, 3, 4):
        assert announced.first(open_time)
    assert announced.first(1)  # forgotten: the 4th pushed it out
    assert not any(announced.first(t) for t in (3, 4))
