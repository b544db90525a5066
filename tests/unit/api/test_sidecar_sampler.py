"""The sampler's view of the broker (up, stale, down) and the Prometheus families built from it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tacore.api import prom
from tacore.api.broker_link import Sampler
from tacore.api.errors import ComponentUnavailable
from tacore.api.security import key_matches

BOUNDS = [1.0, 10.0]


def _status(workers: list[dict[str, Any]], methods: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"uptime_s": 5.0, "queue_depth": 0, "queue_limit": 100, "inflight": 0, "live_workers": len(workers),
            "workers": workers, "methods": methods or {}, "counters": {"received": 3}, "pid": None}


def _worker(wid: str, state: str = "idle", kind: str = "worker") -> dict[str, Any]:
    return {"worker_id": wid, "pid": None, "host": "elsewhere", "kind": kind, "state": state, "methods": ["m"],
            "served": 1, "failed": 0, "last_heartbeat": time.time(), "current": []}


METRICS = {"uptime_s": 5.0, "queue_depth": 0, "inflight": 0, "latency_buckets_ms": BOUNDS,
           "methods": {"m": {"count": 3, "success": 2, "error": 1, "errors": {"TIMEOUT": 1},
                             "latency_counts": [1, 1, 1], "latency_sum_ms": 30.0}}}


class FakeLink:
    def __init__(self, replies: dict[str, Any] | None) -> None:
        self.replies = replies
        self.calls: list[str] = []
        self.resets = 0

    async def reset(self) -> None:
        self.resets += 1

    async def call(self, method: str, params: dict[str, Any] | None = None, **_: Any) -> Any:
        self.calls.append(method)
        if self.replies is None:
            raise ComponentUnavailable("broker", "no answer")
        return self.replies[method]


def _sampler(replies: dict[str, Any] | None) -> Sampler:
    return Sampler(FakeLink(replies), None, kline_every=1)  # type: ignore[arg-type]


async def test_a_good_poll_makes_the_broker_up() -> None:
    sampler = _sampler({"broker.status": _status([_worker("w1")]), "broker.metrics": METRICS})
    await sampler.tick()
    assert sampler.broker_up()
    assert sampler.require_status()["live_workers"] == 1
    assert len(sampler.series.ring) == 1
    assert sampler.workers()[0]["cpu_percent"] is None  # a remote worker: no figures rather than wrong ones


async def test_a_failed_poll_is_a_503_and_a_gap() -> None:
    sampler = _sampler(None)
    await sampler.tick()
    assert not sampler.broker_up()
    assert sampler.series.ring.last() is not None and sampler.series.ring.last().rps is None  # type: ignore[union-attr]
    assert sampler.link.resets == 1  # type: ignore[attr-defined]  # no stale polls left queued
    with pytest.raises(ComponentUnavailable) as info:
        sampler.require_status()
    assert info.value.component == "broker" and "no answer" in info.value.message


async def test_a_stale_snapshot_counts_as_down() -> None:
    sampler = _sampler({"broker.status": _status([]), "broker.metrics": METRICS})
    await sampler.tick()
    sampler.broker_ok_at = time.time() - 10
    assert not sampler.broker_up()


async def test_data_agent_state_and_polling() -> None:
    methods = {"kline.status": {"workers": 1}, "kline.connections": {"workers": 1}}
    replies = {"broker.status": _status([_worker("da", kind="data-agent")], methods), "broker.metrics": METRICS,
               "kline.status": {"status": "ok", "cache_hits": 9, "cache_misses": 1, "klines_ingested": 42},
               "kline.connections": {"connections": [], "count": 0}}
    sampler = _sampler(replies)
    await sampler.tick()
    assert sampler.data_agent() == {"configured": True, "up": True, "workers": ["da"]}
    assert sampler.kline_status is not None and sampler.kline_status["klines_ingested"] == 42


async def test_no_data_agent_is_not_configured_and_not_polled() -> None:
    sampler = _sampler({"broker.status": _status([_worker("w1")]), "broker.metrics": METRICS})
    await sampler.tick()
    assert sampler.data_agent()["configured"] is False
    assert "kline.status" not in sampler.link.calls  # type: ignore[attr-defined]


async def test_prometheus_families_from_a_snapshot() -> None:
    replies = {"broker.status": _status([_worker("w1"), _worker("w2", "dead")], {"kline.status": {"workers": 1}}),
               "broker.metrics": METRICS, "kline.status": {"counters": {"cache_hits": 3, "cache_misses": 1},
                                                           "klines_ingested": 7, "connection_count": 2},
               "kline.connections": {"connections": []}}
    sampler = _sampler(replies)
    await sampler.tick()
    text = prom.render(prom.build_registry(sampler)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("tacore_requests_total", (("method", "m"), ("status", "success")))] == 2
    assert samples[("tacore_request_errors_total", (("code", "TIMEOUT"), ("method", "m")))] == 1
    assert samples[("tacore_request_duration_seconds_bucket", (("le", "0.001"), ("method", "m")))] == 1
    assert samples[("tacore_request_duration_seconds_bucket", (("le", "+Inf"), ("method", "m")))] == 3
    assert samples[("tacore_request_duration_seconds_sum", (("method", "m"),))] == pytest.approx(0.03)
    assert samples[("tacore_workers", (("state", "dead"),))] == 1
    assert samples[("tacore_workers", (("state", "idle"),))] == 1
    assert samples[("tacore_cache_hits_total", ())] == 3
    assert samples[("tacore_klines_ingested_total", ())] == 7
    assert samples[("tacore_kline_connections", ())] == 2
    assert samples[("tacore_broker_up", ())] == 1


async def test_prometheus_when_the_broker_is_down() -> None:
    sampler = _sampler(None)
    await sampler.tick()
    families = {f.name for f in text_string_to_metric_families(prom.render(prom.build_registry(sampler)).decode())}
    assert "tacore_broker_up" in families and "tacore_requests" not in families


def test_key_comparison() -> None:
    assert key_matches("secret", "secret")
    assert not key_matches("secret", "Secret")
    assert not key_matches("secret", None)
    assert not key_matches("secret", "")


async def test_a_kept_warm_view_is_built_by_the_tick_and_not_by_the_next_request() -> None:
    sampler = _sampler({"broker.status": _status([_worker("w1")]), "broker.metrics": METRICS})
    builds: list[int] = []
    sampler.keep_warm("view", lambda: builds.append(sampler.ticks) or len(builds))
    await sampler.tick()
    assert builds == [1]
    assert sampler.memo("view", lambda: pytest.fail("the request rendered the view")) == 1
    await sampler.tick()
    assert builds == [1, 2] and sampler.memo("view", lambda: -1) == 2


async def test_a_warm_build_that_fails_leaves_the_request_to_build_and_raise() -> None:
    replies: dict[str, Any] = {"broker.status": _status([_worker("w1")]), "broker.metrics": METRICS}
    sampler = _sampler(replies)
    sampler.keep_warm("status", lambda: sampler.require_status()["live_workers"])
    await sampler.tick()
    assert sampler.memo("status", lambda: -1) == 1
    sampler.link.replies = None  # type: ignore[attr-defined]  # the broker goes away
    await sampler.tick()
    with pytest.raises(ComponentUnavailable):
        sampler.memo("status", sampler.require_status)
