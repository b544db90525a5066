"""A worker's READY: its declaration read, its key and the registry's rules checked, then registered and fed.

A worker the broker turns away (unreadable READY, not a worker key, refused by the registry:
``WorkerRegistry.refusal``) is logged, counted and told DISCONNECT with the reason. A registered
one gets the first heartbeat snapshot and, at once, queued work up to its credit.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson

from tacore.auth.roles import parse_role
from tacore.broker import views
from tacore.broker.broker_methods import BROKER_METHODS
from tacore.broker.worker_loss import refresh_access
from tacore.broker.workers import WorkerRecord
from tacore.protocol import worker as wp

if TYPE_CHECKING:
    from tacore.broker.broker import Broker

log = logging.getLogger("tacore.broker")


def on_ready(broker: Broker, identity: bytes, payload: bytes, now: float, user: str | None) -> None:
    try:
        info = orjson.loads(payload)
        methods_decl = info["methods"]
        methods = frozenset(str(m) for m in methods_decl)
        idempotent = frozenset(str(m) for m, spec in methods_decl.items() if spec.get("idempotent"))
        roles = {str(m): str(parse_role(str(spec["role"]))) for m, spec in methods_decl.items()
                 if spec.get("role") is not None}
        credit = max(1, min(int(info.get("credit", 1)), 64))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
        refuse_worker(broker, identity, repr(identity), f"unreadable READY ({type(exc).__name__}: {exc})")
        return
    record = WorkerRecord(identity, str(info.get("worker_id") or identity.hex()), info.get("pid"),
                          info.get("host"), str(info.get("kind", "worker")), methods, idempotent, credit,
                          now + broker._liveness_s, roles, user)
    refusal = registration_refusal(broker, record)
    if refusal is not None:
        refuse_worker(broker, identity, record.worker_id, refusal)
        return
    broker.workers.add(record)
    broker.declared.update(methods - BROKER_METHODS)  # the broker answers those itself
    if broker.access is not None:
        record.key = broker.access.name(user)
        broker.access.declare_all({m: parse_role(roles[m]) if m in roles else None for m in methods})
    broker._send_worker(identity, [wp.HEARTBEAT, views.heartbeat_snapshot(broker)])
    log.info("worker %s ready (pid %s, %d methods, credit %d)", record.worker_id, record.pid,
             len(methods), credit)
    broker._feed(record, now)


def registration_refusal(broker: Broker, record: WorkerRecord) -> str | None:
    access = broker.access
    if access is not None and not access.is_worker_key(record.user):
        if record.user not in access.names:
            refresh_access(broker)  # made since the broker last looked
        if not access.is_worker_key(record.user):
            return f"key {access.name(record.user)!r} is not a worker key (revoked?)"
    return broker.workers.refusal(record)


def refuse_worker(broker: Broker, identity: bytes, worker_id: str, reason: str) -> None:
    """Turn a worker away: logged, counted, and told DISCONNECT with the reason."""
    broker.counters["workers_refused"] += 1
    log.warning("worker %s refused: %s", worker_id, reason)
    broker._send_worker(identity, [wp.DISCONNECT, reason.encode()])
