"""The hub's bookkeeping: rate windows, connection attempts, subscriptions, pauses."""

from __future__ import annotations

import time
from typing import Any, cast

from tacore.exchange_sim.config import SimClock, SimConfig
from tacore.exchange_sim.hub import Hub
from tacore.exchange_sim.intervals import parse_stream


def _client(hub: Hub) -> Any:
    return hub.add_client(cast(Any, object()), "127.0.0.1", "/ws", False)


def test_the_sixth_frame_within_a_second_breaks_the_rate_limit() -> None:
    hub = Hub(SimConfig())
    client = _client(hub)
    assert all(hub.count_frame(client) for _ in range(5))
    assert not hub.count_frame(client)


def test_the_allowance_refills_at_five_frames_a_second() -> None:
    hub = Hub(SimConfig())
    client = _client(hub)
    for _ in range(5):
        assert hub.count_frame(client)
    client.frame_tokens_at -= 0.41  # two frames' worth of time passes
    assert hub.count_frame(client) and hub.count_frame(client)
    assert not hub.count_frame(client)


def test_pacing_at_exactly_five_a_second_never_trips_the_limit() -> None:
    hub = Hub(SimConfig())
    client = _client(hub)
    for _ in range(50):
        assert hub.count_frame(client)
        client.frame_tokens_at -= 0.2


def test_connection_attempts_past_the_limit_are_refused_and_counted() -> None:
    hub = Hub(SimConfig(max_connection_attempts=2))
    assert hub.admit("10.0.0.1") and hub.admit("10.0.0.1")
    assert not hub.admit("10.0.0.1")
    assert hub.admit("10.0.0.2")  # per IP
    assert hub.counters["handshakes_refused"] == 1 and hub.counters["connection_attempts"] == 4


def test_a_feed_lives_while_any_connection_subscribes_to_it() -> None:
    hub = Hub(SimConfig())
    a, b = _client(hub), _client(hub)
    stream = parse_stream("btcusdt@kline_1m")
    assert stream is not None
    hub.subscribe(a, stream)
    hub.subscribe(b, stream)
    hub.subscribe(b, stream)
    assert hub.feeds["btcusdt@kline_1m"].subscribers == 2
    hub.unsubscribe(a, "btcusdt@kline_1m")
    assert "btcusdt@kline_1m" in hub.feeds
    hub.remove_client(b, 1000)
    assert hub.feeds == {} and hub.closes_by_code["1000"] == 1


def test_streams_without_data_get_no_feed() -> None:
    hub = Hub(SimConfig(symbols=frozenset({"BTCUSDT"})))
    client = _client(hub)
    for name in ("ethusdt@kline_1m", "btcusdt@kline_3m", "btcusdt@trade"):
        stream = parse_stream(name)
        assert stream is not None
        hub.subscribe(client, stream)
    assert list(client.subs) == ["ethusdt@kline_1m", "btcusdt@kline_3m", "btcusdt@trade"]
    assert hub.feeds == {}


def test_pauses_expire_and_pause_all_covers_every_stream() -> None:
    hub = Hub(SimConfig())
    now = time.monotonic()
    hub.pause(0.5, ["a@kline_1m"])
    assert hub.is_paused("a@kline_1m", now) and not hub.is_paused("b@kline_1m", now)
    assert not hub.is_paused("a@kline_1m", now + 1.0)
    hub.pause(0.5, None)
    assert hub.is_paused("b@kline_1m", now)


def test_the_simulated_clock_runs_at_its_speed_from_its_start() -> None:
    clock = SimClock(speed=1000.0, start_ms=1_000)
    time.sleep(0.05)
    assert 40_000 <= clock.now_ms() - 1_000 <= 2_000_000
    assert clock.real_delay_s(60_000) == 0.06
