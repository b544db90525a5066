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
        "queue_depth": len(broker.queue),
        "queue_by_method": broker.queue.depth_by_method(),
        "queue_limit": broker.queue.limit,
        "queue_bytes": broker.queue.bytes,
        "inflight": workers.inflight,
        "live_workers": len(live),
        "workers": [r.to_wire() for r in live] + [r.to_wire() for r in workers.recent_dead(now_wall)],
        "methods": {m: {"idempotent": workers.idempotent.get(m, False), "workers": workers.servers.get(m, 0)}
                    for m in sorted(broker.declared)},
        "counters": dict(broker.counters),
        "dedupe_entries": len(broker.dedupe),
        "request_log": None if records is None else {"shipped": records.shipped, "dropped": records.dropped},
    }


def metrics(broker: Broker) -> dict[str, Any]:
    return {
        "uptime_s": round(time.time() - broker.started_at, 3),
        "queue_depth": len(broker.queue),
        "inflight": broker.workers.inflight,
        "latency_buckets_ms": list(LATENCY_BUCKETS_MS),
        "methods": broker.stats.to_wire(),
        "counters": dict(broker.counters),
    }


def heartbeat_snapshot(broker: Broker) -> bytes:
    """What workers learn of the broker with each heartbeat (health.check reports it)."""
    kinds: dict[str, int] = {}
    for record in broker.workers.live.values():
        kinds[record.kind] = kinds.get(record.kind, 0) + 1
    return orjson.dumps({"queue_depth": len(broker.queue), "live_workers": len(broker.workers.live),
                         "workers_by_kind": kinds, "inflight": broker.workers.inflight, "sent_at": time.time()})
