"""What clients send: one wake-up's requests, each admitted (queued, or given to a worker at once) or answered now.

The common case (a fresh call to a served method, the queue not full) is admitted inline by
``on_clients``. Everything else takes ``on_uncommon_request``: a broker method
(``broker_methods.py``), a retry of a request_id still running or recently answered (deduped), a
request while the broker drains, an unknown method, a full queue. A frame that does not parse is
answered ``INVALID_REQUEST`` and, with keys on, a request its key may not make ``FORBIDDEN``.
Compiled with the broker (setup.py): this is the per-request path in.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tacore.broker.answers import INVALID_METHOD, record
from tacore.broker.broker_methods import BROKER_METHODS, on_broker_method
from tacore.broker.queue import Pending
from tacore.broker.worker_loss import refresh_access
from tacore.errors import ErrorCode, InvalidRequest
from tacore.protocol.envelope import Request, decode_request, encode_error

if TYPE_CHECKING:
    from tacore.broker.broker import Broker


def on_clients(broker: Broker, batch: list[list[bytes]], users: list[str] | None = None) -> None:
    """Admit one wake-up's requests; the common case (a fresh call to a served method) stays inline.

    Everything else (a bad frame, a broker method, a retry, an unknown method, a full queue) is
    answered by ``on_uncommon_request``; with keys on, a request its key may not make is answered
    ``FORBIDDEN`` before anything else. The wake-up's clock stands for the arrival of its batch.
    """
    now = time.monotonic()
    wall = time.time()
    broker.counters["received"] += len(batch)
    max_bytes = broker._max_bytes
    declared = broker.declared
    active = broker.active
    dedupe = broker.dedupe
    full = broker.queue.full
    permits = None if users is None or broker.access is None else broker.access.permits
    for index, frames in enumerate(batch):
        body = frames[-1]
        try:
            request = decode_request(body, max_bytes)
        except InvalidRequest as exc:
            reject_invalid(broker, frames, exc, now)
            continue
        method = request.method
        if (permits is not None and users is not None and not permits(users[index], method)
                and forbid(broker, frames[:-1], request, users[index], now)):
            continue
        request_id = request.request_id
        if (method not in declared or full()
                or (request_id is not None and (request_id in active or request_id in dedupe))):
            on_uncommon_request(broker, frames[:-1], request, now)
        else:
            admit(broker, frames[:-1], request, now, wall)


def admit(broker: Broker, envelope: list[bytes], request: Request, now: float, wall: float) -> None:
    """Accept a request: from here on the broker owes it exactly one answer."""
    timeout_ms = request.timeout_ms
    broker._seq += 1
    item = Pending(broker._seq, request.request_id, request.method, request.priority, request.raw, [envelope],
                   now, wall, now + (broker._default_timeout_s if timeout_ms is None else timeout_ms / 1000.0),
                   request.internal)
    if item.request_id is not None:
        broker.active[item.request_id] = item
    worker = None if broker.queue.has(item.method) else broker.workers.pick(item.method)
    if worker is None:
        broker.queue.push(item)
    else:
        broker._dispatch(item, worker, now)


def reject_invalid(broker: Broker, frames: list[bytes], exc: InvalidRequest, now: float) -> None:
    if len(frames) < 2:
        return  # a ROUTER always prefixes the identity: nothing to answer to
    broker.counters["invalid_request"] += 1
    reply = encode_error(exc.request_id, ErrorCode.INVALID_REQUEST, exc.message, exc.details)
    broker._send_client(frames[:-1], reply)
    record(broker, exc.request_id, INVALID_METHOD, ErrorCode.INVALID_REQUEST, None, 5, now, now, 0.0, False,
           message=exc.message)


def forbid(broker: Broker, envelope: list[bytes], request: Request, user: str, now: float) -> bool:
    """Answer a request its key may not make (role too low, or the key revoked since it connected).

    A key the broker has not seen yet was made since its last look at the allow-list (the ZAP
    handler, which admitted it, looks at each connection): it looks again before saying no.
    False when the request is allowed after all.
    """
    access = broker.access
    assert access is not None
    if user not in access.names and refresh_access(broker) and access.permits(user, request.method):
        return False
    broker.counters["forbidden"] += 1
    message, details = access.refusal(user, request.method)
    broker._send_client(envelope, encode_error(request.request_id, ErrorCode.FORBIDDEN, message, details))
    record(broker, request.request_id, request.method, ErrorCode.FORBIDDEN, None, request.priority, now, now, 0.0,
           request.internal, request.raw, message)
    return True


def on_uncommon_request(broker: Broker, envelope: list[bytes], request: Request, now: float) -> None:
    """A broker method, a retry of a known request_id, an unknown method or a full queue."""
    method = request.method
    request_id = request.request_id
    if method in BROKER_METHODS:
        on_broker_method(broker, envelope, request, now)
        return
    if request_id is not None:
        active = broker.active.get(request_id)
        if active is not None:
            broker.counters["deduped"] += 1
            active.envelopes.append(envelope)
            return
        cached = broker.dedupe.get(request_id)
        if cached is not None:
            broker.counters["deduped"] += 1
            broker._send_client(envelope, cached)
            return
    if broker.draining:
        broker.counters["refused_stopping"] += 1
        message = "TACore is stopping and takes no new requests; it was not run"
        broker._send_client(envelope, encode_error(request_id, ErrorCode.UNAVAILABLE, message,
                                                   {"reason": "stopping"}))
        record(broker, request_id, method, ErrorCode.UNAVAILABLE, None, request.priority, now, now, 0.0,
               request.internal, request.raw, message)
        return
    if method not in broker.declared:
        broker.counters["unknown_method"] += 1
        message = f"no worker serves method {method!r}"
        broker._send_client(envelope, encode_error(request_id, ErrorCode.UNKNOWN_METHOD, message,
                                                   {"method": method}))
        record(broker, request_id, method, ErrorCode.UNKNOWN_METHOD, None, request.priority, now, now, 0.0,
               request.internal, request.raw, message)
        return
    if broker.queue.full():
        broker.counters["busy"] += 1
        message = f"queue full ({len(broker.queue)} pending, {broker.queue.bytes} bytes); retry later"
        broker._send_client(envelope, encode_error(
            request_id, ErrorCode.BUSY, message,
            {"queue_limit": broker.queue.limit, "queue_max_bytes": broker.queue.max_bytes}))
        record(broker, request_id, method, ErrorCode.BUSY, None, request.priority, now, now, 0.0, request.internal,
               request.raw, message)
        return
    admit(broker, envelope, request, now, time.time())  # none of the above after all: an ordinary request
