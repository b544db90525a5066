"""``broker.cancel`` and ``broker.preempt``: stop a request wherever it is, and answer it ``CANCELLED`` now.

A client cancels its own call by request_id; the flow scheduler preempts a call with a reason. A
request still in the broker's queue is removed (it never ran); one a worker holds is answered at
once and the worker is told (TAW4 CANCEL): it drops the request if it has not started it, and the
running handler sees ``ctx.cancelled``. What the worker sends back later is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tacore.broker.answers import finish
from tacore.errors import ErrorCode
from tacore.protocol import worker as wp
from tacore.protocol.envelope import encode_error

if TYPE_CHECKING:
    from tacore.broker.broker import Broker

CANCEL_METHODS: dict[str, int] = {"broker.cancel": wp.CANCEL_CLIENT, "broker.preempt": wp.CANCEL_PREEMPT}
MAX_REASON = 200


def parse(method: str, params: dict[str, Any]) -> tuple[str, str] | list[dict[str, str]]:
    """(request_id, reason), or the INVALID_PARAMS details."""
    request_id = params.get("request_id")
    reason = params.get("reason")
    problems = []
    if type(request_id) is not str or not 0 < len(request_id) <= 256:
        problems.append({"field": "request_id", "message": "a non-empty string of at most 256 characters"})
    if method == "broker.preempt" and reason is None:
        problems.append({"field": "reason", "message": "a preemption states its reason"})
    if reason is not None and (type(reason) is not str or len(reason) > MAX_REASON):
        problems.append({"field": "reason", "message": f"a string of at most {MAX_REASON} characters"})
    unknown = sorted(set(params) - {"request_id", "reason"})
    if unknown:
        problems.append({"field": unknown[0], "message": "unknown field"})
    if problems:
        return problems
    assert isinstance(request_id, str)
    return request_id, reason if isinstance(reason, str) else ""


def cancel(broker: Broker, request_id: str, kind: int, reason: str, now: float) -> dict[str, Any]:
    """Cancel ``request_id``; says whether it was found and where it was."""
    item = broker.active.get(request_id)
    if item is None:
        state = "answered" if request_id in broker.dedupe else "unknown"
        return {"request_id": request_id, "cancelled": False, "state": state}
    record = item.worker
    if item.queued:
        broker.queue.remove(item)
        state = "queued"
    elif record is not None and item in record.outbox:  # assigned this wake-up, never sent: it never will be
        record.outbox.remove(item)
        broker.workers.unassign(record, item.seq)
        broker.workers.freed(record)
        state = "queued"
    else:
        state = "dispatched"
        if record is not None:
            item.answered = True
            broker.cancels.append((record, (item.seq, kind, reason)))
    kind_name = wp.CANCEL_KINDS[kind]
    ran = False if state == "queued" else None
    message = (f"cancelled ({kind_name}: {reason or 'no reason given'}); "
               + ("it was not run" if ran is False else "it was at a worker and may have run"))
    body = encode_error(request_id, ErrorCode.CANCELLED, message,
                        {"kind": kind_name, "reason": reason or None, "state": state, "ran": ran},
                        (now - item.received) * 1000.0)
    broker.counters["cancelled"] += 1
    worker_id = record.worker_id if record is not None and state == "dispatched" else None
    finish(broker, item, body, ErrorCode.CANCELLED, worker_id, 0.0, now, cache=False)
    return {"request_id": request_id, "cancelled": True, "state": state}
