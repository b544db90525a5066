"""The broker's view of its workers: who serves what, who has credit (LRU), who has gone silent."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from tacore.auth.roles import RoleTable, parse_role
from tacore.broker.queue import Pending

DEAD_RETENTION_S = 300.0
#: A method whose handler usually takes at most this long may queue behind other work at a worker
#: (credit > 1); a slower one only goes to a worker with nothing in flight, so a long call never
#: holds up requests that another worker could run now.
FAST_METHOD_MS = 2.0
_EWMA_WEIGHT = 0.2


@dataclass(slots=True, eq=False)
class WorkerRecord:
    identity: bytes
    worker_id: str
    pid: int | None
    host: str | None
    kind: str
    methods: frozenset[str]
    idempotent: frozenset[str]
    credit: int
    expires_at: float  # time.monotonic()
    roles: dict[str, str] = field(default_factory=dict)  # method -> role it declares (only those that do)
    user: str | None = None  # the ZAP user id (public key) it registered with; None without keys
    key: str | None = None  # that key's name
    connected_at: float = field(default_factory=time.time)
    last_heartbeat: float = field(default_factory=time.time)
    inflight: dict[int, Pending] = field(default_factory=dict)  # by seq
    outbox: list[Pending] = field(default_factory=list)  # assigned this wake-up, sent by the broker's flush
    slow_inflight: int = 0
    #: the seq of a request it said it is stuck on (HANDBACK): it gets no work until that one's reply comes
    stuck_seq: int = 0
    served: int = 0
    failed: int = 0
    dead_at: float | None = None
    dead_reason: str | None = None

    @property
    def free(self) -> int:
        return self.credit - len(self.inflight)

    def to_wire(self) -> dict[str, Any]:
        state = ("dead" if self.dead_at is not None else "stuck" if self.stuck_seq else "busy" if self.inflight
                 else "idle")
        return {
            "worker_id": self.worker_id, "pid": self.pid, "host": self.host, "kind": self.kind, "state": state,
            "methods": sorted(self.methods), "key": self.key, "credit": self.credit, "served": self.served,
            "failed": self.failed,
            "connected_at": round(self.connected_at, 3), "last_heartbeat": round(self.last_heartbeat, 3),
            "dead_at": None if self.dead_at is None else round(self.dead_at, 3), "dead_reason": self.dead_reason,
            "current": [
                {"request_id": item.request_id, "method": item.method,
                 "since": round(item.received_wall + (item.dispatched - item.received), 3),
                 "answered": item.answered}
                for item in self.inflight.values()
            ],
        }


class WorkerRegistry:
    """Live workers by identity; ``ready`` holds those with free credit, least recently used first."""

    def __init__(self, roles: RoleTable | None = None) -> None:
        self.role_table = roles or RoleTable()
        self.live: dict[bytes, WorkerRecord] = {}
        self.ready: OrderedDict[bytes, WorkerRecord] = OrderedDict()
        self.dead: deque[WorkerRecord] = deque(maxlen=256)
        self.servers: dict[str, int] = {}  # method -> live workers serving it
        self.idempotent: dict[str, bool] = {}  # method -> declared idempotent (every live server agrees)
        self.roles: dict[str, str] = {}  # method -> the role it requires as its live servers declare it
        self.method_ms: dict[str, float] = {}  # method -> moving average of its handler time
        self.fast: set[str] = set()  # methods whose average is at most FAST_METHOD_MS
        self.inflight = 0  # requests at live workers: the sum of their ``inflight``, kept rather than summed

    def add(self, record: WorkerRecord) -> None:
        self.live[record.identity] = record
        for method in record.methods:
            self.servers[method] = self.servers.get(method, 0) + 1
            self.idempotent[method] = method in record.idempotent
            self.roles[method] = self.required_role(record, method)
        if record.free > 0:
            self.ready[record.identity] = record

    def refusal(self, record: WorkerRecord) -> str | None:
        """Why ``record`` may not register now, or None.

        A worker id that is live on another connection is not taken over (that is how one worker
        impersonates another); a method declared unlike its live servers declare it (idempotent or
        not, its role) is not redefined for everyone. A worker that restarts registers once its old
        connection's heartbeat expires; a flag can change once no live worker serves the method.
        """
        for other in self.live.values():
            if other.worker_id == record.worker_id and other.identity != record.identity:
                return f"worker id {record.worker_id!r} is live on another connection (pid {other.pid})"
        for method in sorted(record.methods):
            if not self.servers.get(method):
                continue
            idempotent = method in record.idempotent
            if self.idempotent.get(method) != idempotent:
                return (f"it declares {method} idempotent={idempotent}, the live workers declare "
                        f"idempotent={not idempotent}")
            role = self.required_role(record, method)
            if self.roles.get(method) != role:
                return (f"it declares {method} with role {role}, the live workers with role {self.roles.get(method)}")
        return None

    def required_role(self, record: WorkerRecord, method: str) -> str:
        """The role ``method`` requires as ``record`` declares it (table and declaration combined)."""
        declared = record.roles.get(method)
        return str(self.role_table.required(method, None if declared is None else parse_role(declared)))

    def remove(self, record: WorkerRecord, reason: str) -> None:
        if self.live.pop(record.identity, None) is None:
            return
        self.ready.pop(record.identity, None)
        for method in record.methods:
            self.servers[method] -= 1
        record.dead_at = time.time()
        record.dead_reason = reason
        self.dead.append(record)

    def is_fast(self, method: str) -> bool:
        """Unknown methods count as slow until their first replies are measured."""
        return method in self.fast

    def observe(self, method: str, processing_ms: float) -> None:
        old = self.method_ms.get(method)
        average = processing_ms if old is None else old + _EWMA_WEIGHT * (processing_ms - old)
        self.method_ms[method] = average
        if average <= FAST_METHOD_MS:
            self.fast.add(method)
        else:
            self.fast.discard(method)

    def can_take(self, record: WorkerRecord, method: str) -> bool:
        return not record.inflight or (record.slow_inflight == 0 and self.is_fast(method))

    def pick(self, method: str) -> WorkerRecord | None:
        """The least recently used worker with credit that serves ``method`` and may take it now."""
        for record in self.ready.values():
            if method in record.methods and self.can_take(record, method):
                return record
        return None

    def assign(self, record: WorkerRecord, item: Pending) -> None:
        """``item`` is being sent to ``record``; ``record`` becomes most recently used (or leaves ``ready``)."""
        record.inflight[item.seq] = item
        item.worker = record
        record.slow_inflight += item.slow
        self.inflight += 1
        if record.free > 0:
            self.ready.move_to_end(record.identity)
        else:
            self.ready.pop(record.identity, None)

    def unassign(self, record: WorkerRecord, seq: int) -> Pending | None:
        """The request ``record`` holds under ``seq``, no longer in flight there (None if it holds none)."""
        item = record.inflight.pop(seq, None)
        if item is not None:
            item.worker = None
            record.slow_inflight -= item.slow
            self.inflight -= 1
        return item

    def unassign_all(self, record: WorkerRecord) -> list[Pending]:
        """Every request ``record`` holds, no longer in flight there (it died or the broker is stopping)."""
        items = list(record.inflight.values())
        for item in items:
            item.worker = None
        record.inflight.clear()
        record.slow_inflight = 0
        self.inflight -= len(items)
        return items

    def freed(self, record: WorkerRecord) -> None:
        if record.stuck_seq == 0 and record.identity in self.live and record.identity not in self.ready:
            self.ready[record.identity] = record

    def stuck(self, record: WorkerRecord, seq: int) -> None:
        """``record`` said it is stuck on ``seq``: no more work for it until that request's reply."""
        record.stuck_seq = seq
        self.ready.pop(record.identity, None)

    def expired(self, now: float) -> list[WorkerRecord]:
        return [record for record in self.live.values() if record.expires_at <= now]

    def recent_dead(self, now_wall: float) -> list[WorkerRecord]:
        return [r for r in self.dead if r.dead_at is not None and now_wall - r.dead_at <= DEAD_RETENTION_S]
