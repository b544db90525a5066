"""What the broker tells about itself: ``broker.status``, ``broker.metrics`` and the heartbeat snapshot.

Read-only renderings of the broker's state, kept apart from the routing loop; the shapes are in
docs/CONTRACTS.md.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import orjson

from tacore.broker.stats import LATENCY_BUCKETS_MS
from tacore.compiled import core_kind
from tacore.health import Observations, assess, worst

if TYPE_CHECKING:
    from tacore.broker.broker import Broker


def status(broker: Broker) -> dict[str, Any]:
    now_wall = time.time()
    workers = broker.workers
    live = list(workers.live.values())
    records = broker.records
    return {
        "started_at": round(broker.started_at, 3),
        "uptime_s": round(now_wall - broker.started_at, 3),
        "pid": os.getpid(),
        "core": core_kind(sys.modules[type(broker).__module__].__file__),  # compiled (mypyc, setup.py) or python
        "host": socket.gethostname(),
        "auth": "curve" if broker.access is not None else "none",  # keys on (BROKER_CURVE) or loopback trust
        "queue_depth": len(broker.queue),
        "queue_by_method": broker.queue.depth_by_method(),
        "queue_limit": broker.queue.limit,
        "draining": broker.draining,  # an orderly stop began: new requests are answered UNAVAILABLE
        "queue_bytes": broker.queue.bytes,
        "inflight": workers.inflight,
        "live_workers": len(live),
        "workers": [r.to_wire() for r in live] + [r.to_wire() for r in workers.recent_dead(now_wall)],
        "methods": {m: {"idempotent": workers.idempotent.get(m, False), "workers": workers.servers.get(m, 0)}
                    for m in sorted(broker.declared)},
        "counters": counters(broker),
        "dedupe_entries": len(broker.dedupe),
        "request_log": None if records is None else request_log(broker),
        "health": broker.health,
    }


def counters(broker: Broker) -> dict[str, int]:
    """The routing loop's counters plus the frontend's refused connections (counted by their own thread)."""
    return {**broker.counters, "connections_refused": broker.refused.failed}


def request_log(broker: Broker) -> dict[str, Any]:
    """Records shipped by the broker and what the recorder last reported: nothing dropped goes unsaid."""
    records = broker.records
    assert records is not None
    report = broker.reports.latest("recorder")
    facts: dict[str, Any] = dict(report.facts) if report is not None else {}
    by_recorder = int(facts.get("dropped", 0))
    return {
        "shipped": records.shipped, "pending": records.pending, "dropped": records.dropped + by_recorder,
        "dropped_by_broker": records.dropped, "dropped_by_recorder": by_recorder,
        "written": facts.get("written"), "buffered": facts.get("buffered"), "buffer_limit": facts.get("buffer_limit"),
        "write_failures": facts.get("write_failures", 0), "rejected": facts.get("rejected", 0),
        "database": facts.get("database"),
        "reported_at": None if report is None else round(report.received_at, 3),
    }


def health(broker: Broker) -> dict[str, Any]:
    """The dependency states (``tacore.health``), assessed from the broker's view and the latest reports."""
    now = time.time()
    settings = broker.settings
    live = list(broker.workers.live.values())
    records = broker.records
    broker.reports.prune(now)
    states = assess(Observations(
        now=now,
        stale_after_s=max(5.0, 5 * settings.heartbeat_interval_ms / 1000.0),
        pool_workers=sum(1 for r in live if r.kind != "data-agent"),
        data_agent_expected="kline.status" in broker.declared,
        data_agents=sorted(r.worker_id for r in live if r.kind == "data-agent"),
        data_agents_since={r.worker_id: r.connected_at for r in live if r.kind == "data-agent"},
        ships_records=records is not None,
        shipper_dropped=0 if records is None else records.dropped,
        shipper_last_drop_at=None if records is None else records.last_drop_at,
        shipper_backlog=0 if records is None else records.pending,
        cache_configured=settings.redis_url is not None,
        database_kind=settings.sqlalchemy_url.split(":", 1)[0].split("+", 1)[0],
        embedded_candle_store=settings.clickhouse_url is None,
        min_free_bytes=settings.data_dir_min_free_mb << 20,
        reports=broker.reports.current(),
    ))
    return {"status": worst(states.values()), "checked_at": round(now, 3), "dependencies": states}


def metrics(broker: Broker) -> dict[str, Any]:
    return {
        "uptime_s": round(time.time() - broker.started_at, 3),
        "queue_depth": len(broker.queue),
        "inflight": broker.workers.inflight,
        "latency_buckets_ms": list(LATENCY_BUCKETS_MS),
        "methods": broker.stats.to_wire(),
        "internal_methods": broker.internal_stats.to_wire(),
        "counters": counters(broker),
    }


def heartbeat_snapshot(broker: Broker) -> bytes:
    """What workers learn of the broker with each heartbeat (health.check reports it)."""
    kinds: dict[str, int] = {}
    for record in broker.workers.live.values():
        kinds[record.kind] = kinds.get(record.kind, 0) + 1
    return orjson.dumps({"queue_depth": len(broker.queue), "live_workers": len(broker.workers.live),
                         "workers_by_kind": kinds, "inflight": broker.workers.inflight, "sent_at": time.time(),
                         "health": broker.health})


def describe_counters(counters: dict[str, int]) -> str:
    """The broker's counters in words, for its closing log line (``broker.status`` has them as numbers)."""
    c = counters
    return (f"{c.get('received', 0):,} requests read; {c.get('answered', 0):,} accepted and answered "
            f"(by a worker, or TIMEOUT / WORKER_LOST / UNAVAILABLE when it could not run); not accepted: "
            f"{c.get('busy', 0):,} BUSY (queue full), {c.get('refused_stopping', 0):,} while stopping, "
            f"{c.get('invalid_request', 0):,} unreadable, {c.get('unknown_method', 0):,} unknown method; of the "
            f"accepted, {c.get('timeout', 0):,} timed out in the queue, {c.get('timeout_dispatched', 0):,} at a "
            f"worker, {c.get('cancelled', 0):,} were cancelled and {c.get('worker_lost', 0):,} were lost "
            f"with a worker ({c.get('redispatched', 0):,} re-run elsewhere); {c.get('deduped', 0):,} retries "
            f"answered without running twice; {c.get('reply_undeliverable', 0):,} replies found their client gone "
            f"(broker.status/metrics calls are counted as read only)")
