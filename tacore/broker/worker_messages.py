"""What workers send (TAW4, ``tacore/protocol/worker.py``): REPLY, HEARTBEAT, READY, DISCONNECT and HANDBACK.

A REPLY answers the requests it carries and frees the worker's credit for queued work; a message
from a routing identity the broker does not know as that worker (never registered, removed, or
another key on it) is answered DISCONNECT so the worker registers anew; a message that breaks the
protocol removes its worker at once (``worker_loss.py``). Compiled with the broker (setup.py):
this is the per-reply path.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from tacore.broker import overruns
from tacore.broker.answers import finish
from tacore.broker.registration import on_ready
from tacore.broker.worker_loss import worker_gone
from tacore.broker.workers import WorkerRecord
from tacore.errors import RETRYABLE_CODES, ErrorCode
from tacore.protocol import worker as wp

if TYPE_CHECKING:
    from tacore.broker.broker import Broker

log = logging.getLogger("tacore.broker")


def on_worker(broker: Broker, frames: list[bytes], user: str | None) -> None:
    identity = frames[0]
    command = frames[1][:wp.COMMAND_LENGTH] if len(frames) > 1 else b""
    record = broker.workers.live.get(identity)
    if record is not None and record.user != user:
        record = None  # another key on a routing identity a registered worker left: not that worker
    now = time.monotonic()
    if command == wp.REPLY:
        if record is None:
            broker._send_worker(identity, [wp.DISCONNECT])
            return
        record.expires_at = now + broker._liveness_s
        try:
            if len(frames) != 2:
                raise wp.MalformedMessage(f"REPLY in {len(frames) - 1} frames, not 1")
            on_replies(broker, record, frames[1], now)
        except wp.MalformedMessage as exc:
            broke_protocol(broker, record, identity, exc)
            return
        broker._feed(record, now)
    elif command == wp.HEARTBEAT:
        if record is None:
            broker._send_worker(identity, [wp.DISCONNECT])
            return
        record.expires_at = now + broker._liveness_s
        record.last_heartbeat = time.time()
    elif command == wp.READY:
        if record is not None:
            worker_gone(broker, record, "re-registered")
        on_ready(broker, identity, frames[2] if len(frames) > 2 else b"{}", now, user)
    elif command == wp.DISCONNECT:
        if record is not None:
            worker_gone(broker, record, "disconnected")
    elif command == wp.HANDBACK:
        if record is None:
            broker._send_worker(identity, [wp.DISCONNECT])
            return
        record.expires_at = now + broker._liveness_s
        try:
            if len(frames) != 2:
                raise wp.MalformedMessage(f"HANDBACK in {len(frames) - 1} frames, not 1")
            stuck, seqs = wp.unpack_handback(frames[1])
        except wp.MalformedMessage as exc:
            broke_protocol(broker, record, identity, exc)
            return
        overruns.on_handback(broker, record, stuck, seqs, now)
    else:
        log.warning("dropped a malformed message from worker %r (%d frames)", identity, len(frames))


def broke_protocol(broker: Broker, record: WorkerRecord, identity: bytes, exc: wp.MalformedMessage) -> None:
    """What follows from that worker cannot be trusted: remove it now (its requests are re-run or answered at
    once, not after its heartbeat expires) and tell it to register anew."""
    log.warning("worker %s broke the protocol: %s", record.worker_id, exc)
    worker_gone(broker, record, f"protocol error: {exc}")
    broker._send_worker(identity, [wp.DISCONNECT])


def on_replies(broker: Broker, record: WorkerRecord, frame: bytes, now: float) -> None:
    """Answer each request a REPLY frame carries; raises MalformedMessage where the frame breaks."""
    workers = broker.workers
    unassign = workers.unassign
    observe = workers.observe
    worker_id = record.worker_id
    for seq, ok, processing_ms, code, body in wp.iter_replies(frame):
        item = unassign(record, seq)
        if item is None:
            log.warning("worker %s replied to an unknown request", worker_id)
            continue
        if seq == record.stuck_seq:
            record.stuck_seq = 0
        if item.answered:  # its client had its answer (deadline, cancel): this one is dropped
            overruns.late(broker, item, body)
            continue
        observe(item.method, processing_ms)
        record.served += 1
        if ok:
            finish(broker, item, body, None, worker_id, processing_ms, now, cache=True)
        else:
            record.failed += 1
            error = code or ErrorCode.INTERNAL
            # a retryable error (nothing ran, or a dependency was down) is not kept: a retry is a fresh try
            finish(broker, item, body, error, worker_id, processing_ms, now, cache=error not in RETRYABLE_CODES)
    workers.freed(record)
