"""The broker's way out: let in-flight work finish briefly, answer what is left, tell workers, flush the log."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from tacore.broker import views
from tacore.broker.answers import finish
from tacore.errors import ErrorCode
from tacore.protocol import worker as wp
from tacore.protocol.envelope import encode_error

if TYPE_CHECKING:
    from tacore.broker.broker import Broker

log = logging.getLogger("tacore.broker")


def shutdown(broker: Broker) -> None:
    """Let in-flight work finish briefly, answer what is left, tell workers, flush the log."""
    broker._stopping = True  # no new dispatches: queued requests are answered below
    broker._flush()
    grace_end = time.monotonic() + 2.0
    while any(r.inflight for r in broker.workers.live.values()) and time.monotonic() < grace_end:
        if broker.backend.poll(50):
            broker._drain_backend()
            broker._flush()
    now = time.monotonic()
    for item in broker.queue.drain():  # never ran: safe to retry
        body = encode_error(item.request_id, ErrorCode.UNAVAILABLE, "broker shutting down; the request was "
                            "not run", None, (now - item.received) * 1000.0)
        finish(broker, item, body, ErrorCode.UNAVAILABLE, None, 0.0, now, cache=False)
    for record in list(broker.workers.live.values()):
        for item in broker.workers.unassign_all(record):  # may have run: not retryable
            if item.answered:
                continue
            body = encode_error(item.request_id, ErrorCode.WORKER_LOST, "broker shutting down while the "
                                "request ran; it may or may not have taken effect",
                                {"worker_id": record.worker_id}, (now - item.received) * 1000.0)
            finish(broker, item, body, ErrorCode.WORKER_LOST, record.worker_id, 0.0, now, cache=False)
    broker._flush()
    for identity in list(broker.workers.live):
        broker._send_worker(identity, [wp.DISCONNECT])
    if broker.records is not None:
        broker.records.close()
    broker.refused.close()
    broker._close_sockets(500)
    log.info("broker stopped: %s", views.describe_counters(broker.counters))
