"""When work overruns: a request at a worker reaching its deadline, a worker handing requests back, replies
that come after their client was answered, and the CANCELs that tell workers.

The broker's cold paths for stuck work, kept apart from the routing loop; they act on the broker's
state as its own methods would.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tacore.broker.answers import finish
from tacore.broker.queue import Pending
from tacore.broker.workers import WorkerRecord
from tacore.errors import ErrorCode
from tacore.protocol import worker as wp
from tacore.protocol.envelope import encode_error

if TYPE_CHECKING:
    from tacore.broker.broker import Broker

log = logging.getLogger("tacore.broker")


def answer_timeout_dispatched(broker: Broker, item: Pending, now: float) -> None:
    """The deadline of a request a worker holds: answer TIMEOUT now, tell the worker to cancel it."""
    record: WorkerRecord = item.worker
    broker.counters["timeout"] += 1
    broker.counters["timeout_dispatched"] += 1
    item.answered = True
    waited_ms = (now - item.received) * 1000.0
    idempotent = broker.workers.idempotent.get(item.method, False)
    body = encode_error(
        item.request_id, ErrorCode.TIMEOUT,
        f"deadline passed after {waited_ms:.0f} ms; the request was at worker {record.worker_id} for "
        f"{(now - item.dispatched) * 1000.0:.0f} ms and may have run (the worker was told to cancel it)",
        {"waited_ms": round(waited_ms, 3), "state": "dispatched", "worker_id": record.worker_id,
         "idempotent": idempotent}, waited_ms, retryable=idempotent)
    broker.cancels.append((record, (item.seq, wp.CANCEL_DEADLINE, "")))
    finish(broker, item, body, ErrorCode.TIMEOUT, record.worker_id, 0.0, now, cache=False)


def on_handback(broker: Broker, record: WorkerRecord, stuck: int, seqs: list[int], now: float) -> None:
    """``record`` will never start ``seqs``: queue them again (first in line) for the other workers."""
    if stuck and stuck in record.inflight:
        broker.workers.stuck(record, stuck)
    for seq in seqs:
        item = broker.workers.unassign(record, seq)
        if item is None:
            continue
        broker.counters["handed_back"] += 1
        if item.answered:
            continue  # its client had its answer; it never ran
        item.attempts -= 1
        broker.queue.push(item, front=True)
    log.warning("worker %s handed back %d request(s)%s", record.worker_id, len(seqs),
                f", stuck on {stuck}" if stuck else "")
    broker.workers.freed(record)
    for other in list(broker.workers.ready.values()):
        if not len(broker.queue):
            break
        broker._feed(other, now)


def late(broker: Broker, item: Pending, body: bytes) -> None:
    if body:
        broker.counters["late_replies"] += 1
        log.info("dropped the late reply of %s (request_id %s): its client was answered before",
                 item.method, item.request_id)
    else:
        broker.counters["dropped_unstarted"] += 1  # the worker dropped it unstarted, as told


def send_cancels(broker: Broker) -> None:
    """One CANCEL message per worker, after the REQUESTs of this wake-up (a cancel never overtakes its request)."""
    by_worker: dict[bytes, list[wp.CancelEntry]] = {}
    for record, entry in broker.cancels:
        if record.dead_at is None:
            by_worker.setdefault(record.identity, []).append(entry)
    broker.cancels = []
    for identity, entries in by_worker.items():
        broker._send_worker(identity, [wp.pack_cancels(entries)])
