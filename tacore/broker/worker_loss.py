"""A worker leaving: removed from the registry, its idempotent requests re-dispatched once, the rest answered.

A worker goes when its heartbeat expires, it says DISCONNECT, it registers anew, it breaks the
protocol, it cannot be reached, or its key is revoked (``refresh_access``). What it held may have
run: an idempotent request still inside its deadline goes to another worker (once); any other is
answered ``WORKER_LOST``, saying it may or may not have taken effect.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from tacore.broker.answers import finish
from tacore.broker.workers import WorkerRecord
from tacore.errors import ErrorCode
from tacore.protocol import worker as wp
from tacore.protocol.envelope import encode_error

if TYPE_CHECKING:
    from tacore.broker.broker import Broker

log = logging.getLogger("tacore.broker")


def worker_gone(broker: Broker, record: WorkerRecord, reason: str) -> None:
    """Remove a worker; re-dispatch its idempotent requests once, answer the rest WORKER_LOST."""
    broker.workers.remove(record, reason)
    if reason == "disconnected" and not record.inflight:  # an orderly stop: the worker said goodbye
        log.info("worker %s (pid %s) disconnected", record.worker_id, record.pid)
    else:
        log.warning("worker %s (pid %s) removed: %s; %d request(s) in flight", record.worker_id, record.pid,
                    reason, len(record.inflight))
    now = time.monotonic()
    lost = broker.workers.unassign_all(record)
    for item in lost:
        if item.answered:
            continue  # its client had its answer (deadline, cancel)
        if broker.workers.idempotent.get(item.method) and item.attempts < 2 and item.deadline > now:
            broker.counters["redispatched"] += 1
            worker = broker.workers.pick(item.method)
            if worker is None:
                broker.queue.push(item, front=True)
            else:
                broker._dispatch(item, worker, now)
        else:
            broker.counters["worker_lost"] += 1
            body = encode_error(item.request_id, ErrorCode.WORKER_LOST,
                                f"worker {record.worker_id} was lost while running the request; "
                                "it may or may not have taken effect",
                                {"worker_id": record.worker_id, "reason": reason},
                                (now - item.received) * 1000.0)
            finish(broker, item, body, ErrorCode.WORKER_LOST, record.worker_id, 0.0, now, cache=True)


def refresh_access(broker: Broker) -> bool:
    """Re-read the allow-list if it changed; workers whose key was revoked are removed and told DISCONNECT."""
    access = broker.access
    assert access is not None
    if not access.refresh():
        return False
    for record in list(broker.workers.live.values()):
        if not access.is_worker_key(record.user):
            worker_gone(broker, record, "key revoked")
            broker._send_worker(record.identity, [wp.DISCONNECT, b"key revoked"])
    return True
