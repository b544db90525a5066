"""How the broker answers a request: ``finish`` for every admitted one, ``record`` for one refused before the queue.

An admitted request is answered exactly once, through ``finish``: its reply goes to every client
waiting on it, its request_id leaves the active set (and its reply stays in the dedupe cache when
a retry may ask again), and the statistics and the request log count it. A request the broker
answers itself before queueing it (invalid, forbidden, unknown, refused while busy or stopping)
is only counted and logged, by ``record``. Compiled with the broker (setup.py): these run per request.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from tacore.broker.queue import Pending
from tacore.errors import ErrorCode
from tacore.protocol.envelope import encode_error
from tacore.store.request_trace import REQUEST_SHIP_LIMIT

if TYPE_CHECKING:
    from tacore.broker.broker import Broker

#: The method name a request that did not parse is counted and logged under.
INVALID_METHOD = "(invalid)"
#: The statistics' one bucket for every method nobody declared: per-name entries would grow without bound.
UNKNOWN_METHOD_BUCKET = "(unknown)"


def finish(broker: Broker, item: Pending, body: bytes, error_code: str | None, worker_id: str | None,
           processing_ms: float, now: float, *, cache: bool) -> None:
    """Answer ``item``'s client(s) with ``body``, then count and log it."""
    for envelope in item.envelopes:
        broker._send_client(envelope, body)
    broker.counters["answered"] += 1
    request_id = item.request_id
    if request_id is not None:
        if broker.active.get(request_id) is item:
            del broker.active[request_id]
        if cache:
            broker.dedupe.put(request_id, body, now)
    received = item.received
    queue_ms = ((item.dispatched or now) - received) * 1000.0
    total_ms = (now - received) * 1000.0
    (broker.internal_stats if item.internal else broker.stats).observe(item.method, error_code, total_ms, queue_ms)
    if broker.records is not None:
        # the request as it came (a fragment of the frame already parsed: no work here) and an error's reply;
        # the recorder keeps their params, secrets redacted, and the error's message
        raw = item.raw
        broker.records.add([request_id, item.method, "success" if error_code is None else "error", error_code,
                            worker_id, item.priority, queue_ms, processing_ms, total_ms, item.received_wall,
                            item.received_wall + total_ms / 1000.0, item.internal,
                            orjson.Fragment(raw) if len(raw) <= REQUEST_SHIP_LIMIT else len(raw),
                            None if error_code is None else body.decode("utf-8", "replace")])


def answer_timeout(broker: Broker, item: Pending, now: float) -> None:
    """The deadline of a request still in the queue: answered TIMEOUT, it never ran."""
    broker.counters["timeout"] += 1
    waited_ms = (now - item.received) * 1000.0
    reason = "no live worker serves it" if not broker.workers.servers.get(item.method) else "queue wait"
    body = encode_error(item.request_id, ErrorCode.TIMEOUT,
                        f"deadline passed after {waited_ms:.0f} ms in the queue ({reason}); it was not run",
                        {"waited_ms": round(waited_ms, 3), "state": "queued"}, waited_ms)
    finish(broker, item, body, ErrorCode.TIMEOUT, None, 0.0, now, cache=False)


def record(broker: Broker, request_id: str | None, method: str, code: str, worker_id: str | None, priority: int,
           received: float, now: float, processing_ms: float, internal: bool, raw: bytes | None = None,
           message: str | None = None) -> None:
    """Log and count a request answered by the broker itself before it was queued (the request log keeps
    the name it asked for; the statistics count every undeclared name under one bucket). ``raw``: its
    frame, when it parsed; ``message``: the error's."""
    total_ms = (time.monotonic() - received) * 1000.0
    counted = method if method in broker.declared or method == INVALID_METHOD else UNKNOWN_METHOD_BUCKET
    (broker.internal_stats if internal else broker.stats).observe(counted, code, total_ms, 0.0)
    if broker.records is not None:
        wall = time.time()
        shipped: Any = None if raw is None else orjson.Fragment(raw) if len(raw) <= REQUEST_SHIP_LIMIT \
            else len(raw)
        broker.records.add([request_id, method, "error", code, worker_id, priority, 0.0, processing_ms,
                            round(total_ms, 3), wall - total_ms / 1000.0, wall, internal, shipped, message])
