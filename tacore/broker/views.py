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
        "counters": dict(broker.counters),
        "dedupe_entries": len(broker.dedupe),
        "request_log": None if records is None else {"shipped": records.shipped, "dropped": records.dropped,
                                                     "pending": records.pending},
    }


def metrics(broker: Broker) -> dict[str, Any]:
    return {
        "uptime_s": round(time.time() - broker.started_at, 3),
        "queue_depth": len(broker.queue),
        "inflight": broker.workers.inflight,
        "latency_buckets_ms": list(LATENCY_BUCKETS_MS),
        "methods": broker.stats.to_wire(),
        "internal_methods": broker.internal_stats.to_wire(),
        "counters": dict(broker.counters),
    }


def heartbeat_snapshot(broker: Broker) -> bytes:
    """What workers learn of the broker with each heartbeat (health.check reports it)."""
    kinds: dict[str, int] = {}
    for record in broker.workers.live.values():
        kinds[record.kind] = kinds.get(record.kind, 0) + 1
    return orjson.dumps({"queue_depth": len(broker.queue), "live_workers": len(broker.workers.live),
                         "workers_by_kind": kinds, "inflight": broker.workers.inflight, "sent_at": time.time()})


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
