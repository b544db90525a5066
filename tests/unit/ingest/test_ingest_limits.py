"""The exchange's limits on our side: sliding windows and reconnect backoff."""

from __future__ import annotations

import asyncio

import pytest

from workers.ingest.limits import Backoff, SlidingWindow, attempt_limiter, frame_budget


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_allows_limit_events_then_waits_for_the_oldest_to_age_out() -> None:
    clock = FakeClock()
    window = SlidingWindow(4, 1.0, clock=clock)
    for _ in range(4):
        assert window.delay() == 0.0
        window.record()
    assert window.delay() == 1.0
    clock.now += 0.4
    assert abs(window.delay() - 0.6) < 1e-9
    clock.now += 0.6
    assert window.delay() == 0.0


def test_frame_budget_keeps_one_of_five_frames_a_second_for_pongs() -> None:
    assert frame_budget().limit == 4 and frame_budget().window_s == 1.0
    limiter = attempt_limiter()
    assert limiter.limit < 300 and limiter.window_s == 300.0


async def test_acquire_never_exceeds_the_limit_in_any_window() -> None:
    window = SlidingWindow(4, 0.2)
    loop = asyncio.get_running_loop()
    stamps = []
    for _ in range(10):
        await window.acquire()
        stamps.append(loop.time())
    for i in range(len(stamps) - 4):
        assert stamps[i + 4] - stamps[i] >= 0.2 - 1e-3


def test_backoff_doubles_with_jitter_and_caps_then_resets() -> None:
    backoff = Backoff(0.5, 4.0)
    delays = [backoff.next_delay() for _ in range(6)]
    steps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for delay, step in zip(delays, steps, strict=True):
        assert step / 2 <= delay <= step
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_ingest_tuning_comes_from_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    from tacore.errors import ConfigError
    from workers.ingest.config import IngestConfig

    assert IngestConfig.load() == IngestConfig()
    for name, value in {"STALL_S": "0.5", "BATCH_ROWS": "77", "VERIFY_SYMBOLS": "false", "WORKER_ID": "x"}.items():
        monkeypatch.setenv("TACORE_INGEST_" + name, value)
    config = IngestConfig.load()
    assert (config.stall_s, config.batch_rows, config.verify_symbols, config.worker_id) == (0.5, 77, False, "x")
    monkeypatch.setenv("TACORE_INGEST_BATCH_ROWS", "many")
    with pytest.raises(ConfigError, match="TACORE_INGEST_BATCH_ROWS"):
        IngestConfig.load()


def test_ingest_tuning_beyond_the_exchange_limits_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from tacore.errors import ConfigError
    from workers.ingest.config import IngestConfig

    monkeypatch.setenv("TACORE_INGEST_FRAMES_PER_S", "6")
    with pytest.raises(ConfigError, match="TACORE_INGEST_FRAMES_PER_S"):
        IngestConfig.load()
