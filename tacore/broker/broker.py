"""The broker: a ROUTER for clients, a ROUTER for workers, and the few verbs that move requests between them.

Majordomo's algorithm with three changes for speed and safety: each wake-up drains every socket
before dispatching, each worker holds a small credit of queued requests so it never waits on the
broker between two calls, and the broker owns deadlines, dedupe and the re-dispatch rule so that a
request is answered exactly once and a non-idempotent one never runs twice.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from typing import Any

import orjson
import zmq

from tacore.auth.roles import parse_role
from tacore.broker import cancel, overruns, shutdown, views
from tacore.broker.access import BrokerAccess, secure_sockets
from tacore.broker.dedupe import DedupeCache
from tacore.broker.inflight import InflightDeadlines
from tacore.broker.queue import Pending, PendingQueue
from tacore.broker.records import RecordShipper
from tacore.broker.refusals import AcceptFailureWatch
from tacore.broker.reports import ReportBoard
from tacore.broker.spin import SpinGovernor
from tacore.broker.stats import BrokerStats
from tacore.broker.workers import WorkerRecord, WorkerRegistry
from tacore.errors import RETRYABLE_CODES, ErrorCode, InvalidParams, InvalidRequest
from tacore.protocol import worker as wp
from tacore.protocol.envelope import Request, decode_request, encode_error, encode_reply
from tacore.settings import Settings
from tacore.store.request_trace import REQUEST_SHIP_LIMIT
from tacore.transport import recv_batch, send_frames, send_routed

log = logging.getLogger("tacore.broker")

BROKER_METHODS = frozenset({"broker.status", "broker.metrics", "broker.report", *cancel.CANCEL_METHODS})
_LONE_WAKEUPS = 4  # wake-ups in a row that took one message each before the broker spins (see _wait)
_DRAIN_LIMIT = 512  # messages taken from one socket per wake-up before looking at the other
_INVALID_METHOD = "(invalid)"
#: The statistics' one bucket for every method nobody declared: per-name entries would grow without bound.
UNKNOWN_METHOD_BUCKET = "(unknown)"


class Broker:
    """Run with ``Broker(settings).run(stop_event)``; binds on construction so callers know it is up."""

    def __init__(self, settings: Settings, *, expected_methods: frozenset[str] = frozenset(),
                 context: zmq.Context[Any] | None = None, ship_records: bool = True) -> None:
        self.settings = settings
        self._own_context = context is None
        self.context: zmq.Context[Any] = context or zmq.Context()
        self.frontend = self.context.socket(zmq.ROUTER)
        self.backend = self.context.socket(zmq.ROUTER)
        for sock in (self.frontend, self.backend):
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.setsockopt(zmq.LINGER, 1000)
            sock.setsockopt(zmq.SNDHWM, 100_000)
        # Per connection: what a client may have sent that the broker has not read yet. The broker drains
        # fast, so this only bounds memory under a flood (the sender then blocks or drops, by its own HWM).
        self.frontend.setsockopt(zmq.RCVHWM, 1000)
        self.backend.setsockopt(zmq.RCVHWM, 100_000)
        # A frame over the limit closes its connection as soon as its header is read: never buffered whole.
        self.frontend.setsockopt(zmq.MAXMSGSIZE, settings.max_request_bytes)
        self.access: BrokerAccess | None = None
        try:
            self.access = secure_sockets(settings, self.context, self.frontend, self.backend, expected_methods)
        except Exception:
            self._close_sockets(0)
            raise
        self.frontend.bind(settings.frontend_endpoint)
        self.backend.bind(settings.backend_endpoint)
        self.refused = AcceptFailureWatch(self.frontend, "frontend")

        self.queue = PendingQueue(settings.queue_limit, settings.queue_max_bytes)
        self.workers = WorkerRegistry()
        self.dedupe = DedupeCache(settings.dedupe_max_entries, settings.dedupe_ttl_s)
        self.stats = BrokerStats()
        self.internal_stats = BrokerStats()  # the service's own calls (sidecar polling, scheduler), kept apart
        self.records: RecordShipper | None = None
        if ship_records:
            self.records = RecordShipper(
                self.context, settings.recorder_endpoint, batch_size=settings.request_log_batch_size,
                flush_ms=settings.request_log_flush_ms, buffer_limit=settings.request_log_buffer,
            )
        self.declared: set[str] = set(expected_methods)
        self.reports = ReportBoard()  # what the other processes report about their dependencies
        self.health: dict[str, Any] = {}  # the dependency states, assessed once a heartbeat (views.health)
        self.active: dict[str, Pending] = {}  # request_id -> queued or in-flight request
        self.counters = dict.fromkeys(
            ("received", "answered", "busy", "timeout", "worker_lost", "invalid_request", "unknown_method",
             "deduped", "redispatched", "reply_undeliverable", "wakeups", "spins", "worker_messages",
             "refused_stopping", "timeout_dispatched", "cancelled", "late_replies", "dropped_unstarted",
             "handed_back", "forbidden", "workers_refused", "spin_pauses"), 0,
        )
        self.started_at = time.time()
        self._seq = 0
        self._max_bytes = settings.max_request_bytes
        self._default_timeout_s = settings.default_timeout_ms / 1000.0
        self._hb_interval_s = settings.heartbeat_interval_ms / 1000.0
        self._liveness_s = self._hb_interval_s * settings.heartbeat_liveness
        self._stopping = False
        self.draining = False  # an orderly stop began: no new requests, the rest are answered (see serve)
        self._spin_s = settings.broker_spin_us / 1e6
        self.spin = SpinGovernor(self._spin_s)  # pauses the spin while the CPUs are contested
        self._to_clients: list[tuple[list[bytes], bytes]] = []  # (envelope, reply)
        self._to_workers: list[WorkerRecord] = []  # workers with requests in their outbox
        self.inflight_deadlines = InflightDeadlines()
        self.cancels: list[tuple[WorkerRecord, wp.CancelEntry]] = []  # sent after this wake-up's requests

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set, then shut down (queued requests are answered UNAVAILABLE)."""
        log.info("broker up: frontend %s, backend %s", self.settings.frontend_endpoint,
                 self.settings.backend_endpoint)
        try:
            self._loop(stop or threading.Event())
        finally:
            self._shutdown()

    def serve(self, wake: threading.Event, stop: threading.Event) -> None:
        """Serve until ``wake``; unless ``stop`` is set by then, drain until it is, then shut down.

        Draining is the first step of an orderly stop (``tacore serve`` sends SIGUSR1): new requests
        are answered UNAVAILABLE without running, while the queued and in-flight ones still go to the
        workers and are answered; the workers stay registered until they disconnect themselves. The
        hot loop is the same one: draining only makes every new request take the uncommon path.
        """
        log.info("broker up: frontend %s, backend %s", self.settings.frontend_endpoint,
                 self.settings.backend_endpoint)
        try:
            self._loop(wake)
            if not stop.is_set():
                self.draining = True
                self.queue.limit = 0  # every new request is "queue full": _on_uncommon_request refuses it
                if self.records is not None:
                    self.records.flush_s = 0.0  # ship each record at once: the recorder stops soon after
                log.info("broker draining: %d queued, %d in flight; new requests are answered UNAVAILABLE",
                         len(self.queue), self.workers.inflight)
                self._loop(stop)
        finally:
            self._shutdown()

    def _loop(self, stop: threading.Event) -> None:
        self.health = views.health(self)
        poller = zmq.Poller()
        poller.register(self.backend, zmq.POLLIN)  # first: replies free credit for the requests after them
        poller.register(self.frontend, zmq.POLLIN)
        backend = self.backend
        next_heartbeat = time.monotonic() + self._hb_interval_s
        lone = 0  # consecutive wake-ups that took exactly one message: traffic is one request at a time
        while not stop.is_set():
            now = time.monotonic()
            wake = min(next_heartbeat, now + 0.25)
            deadline = self.queue.next_deadline()
            if deadline is not None:
                wake = min(wake, deadline)
            deadline = self.inflight_deadlines.next_deadline()
            if deadline is not None:
                wake = min(wake, deadline)
            if self.records is not None and self.records.due(now + 0.05):
                wake = min(wake, now + self.records.flush_s)
            timeout_ms = max(0, math.ceil((wake - now) * 1000.0))
            events = self._wait(poller, timeout_ms, lone)
            self.counters["wakeups"] += 1
            taken = 0
            for sock, _ in events:
                taken += self._drain_backend() if sock is backend else self._drain_frontend()
            lone = lone + 1 if taken == 1 else 0
            now = time.monotonic()
            if len(self.queue):
                for item in self.queue.expire(now):
                    self._answer_timeout(item, now)
            if len(self.inflight_deadlines):
                for item in self.inflight_deadlines.expire(now):
                    overruns.answer_timeout_dispatched(self, item, now)
            if now >= next_heartbeat:
                self._heartbeat(now)
                next_heartbeat = now + self._hb_interval_s
            self._flush()
            if self.records is not None and self.records.due(now):
                self.records.flush()

    def _wait(self, poller: zmq.Poller, timeout_ms: int, lone: int) -> list[tuple[Any, int]]:
        """Poll for up to ``timeout_ms``, first awake for up to ``BROKER_SPIN_US`` when traffic is one at a time.

        With requests coming one at a time each costs the broker two wake-ups, and waking a sleeping
        thread (on a VM: a halted vCPU) costs more than the broker's own work. The next message of a
        lone request (its reply, the client's next call) usually comes within a few hundred us, so
        the broker waits for it awake. It spins only after ``_LONE_WAKEUPS`` wake-ups in a row took
        one message each, and while a worker is idle: under load wake-ups take batches (a lone one
        now and then, between a slow client's bursts, must not buy a spin that takes a core from the
        client and the workers), and the spin never takes a core from queued work.
        """
        if not (lone >= _LONE_WAKEUPS and timeout_ms and self._spin_s and self._has_idle_worker()):
            return poller.poll(timeout_ms)
        spins = self.counters["spins"] = self.counters["spins"] + 1
        if self.spin.due(spins):  # judged every few dozen spins: paused at once where the CPUs are contested
            self._spin_s = self.spin.review(time.monotonic(), spins)
            self.counters["spin_pauses"] = self.spin.pauses
        ready = poller.poll(0)
        if not ready:
            spin_end = time.perf_counter() + self._spin_s
            while not ready and time.perf_counter() < spin_end:
                ready = poller.poll(0)
            if not ready:
                ready = poller.poll(timeout_ms)
        return ready

    def _has_idle_worker(self) -> bool:
        return not len(self.queue) and self.workers.inflight < len(self.workers.live)

    def _drain_frontend(self) -> int:
        users: list[str] | None = None if self.access is None else []  # with keys: each message's key
        batch = recv_batch(self.frontend, _DRAIN_LIMIT, routed=True, users=users)
        if batch:
            self._on_clients(batch, users)
        return len(batch)

    def _drain_backend(self) -> int:
        on_worker = self._on_worker
        users: list[str] | None = None if self.access is None else []
        batch = recv_batch(self.backend, _DRAIN_LIMIT * 2, routed=True, users=users)
        self.counters["worker_messages"] += len(batch)
        if users is None:
            for frames in batch:
                on_worker(frames, None)
        else:
            for frames, user in zip(batch, users, strict=True):
                on_worker(frames, user)
        return len(batch)

    # -- clients ----------------------------------------------------------------------------------
    def _on_clients(self, batch: list[list[bytes]], users: list[str] | None = None) -> None:
        """Admit one wake-up's requests; the common case (a fresh call to a served method) stays inline.

        Everything else (a bad frame, a broker method, a retry, an unknown method, a full queue) is
        answered by ``_on_uncommon_request``; with keys on, a request its key may not make is answered
        ``FORBIDDEN`` before anything else. The wake-up's clock stands for the arrival of its batch.
        """
        now = time.monotonic()
        wall = time.time()
        self.counters["received"] += len(batch)
        max_bytes = self._max_bytes
        declared = self.declared
        active = self.active
        dedupe = self.dedupe
        full = self.queue.full
        admit = self._admit
        permits = None if users is None or self.access is None else self.access.permits
        for index, frames in enumerate(batch):
            body = frames[-1]
            try:
                request = decode_request(body, max_bytes)
            except InvalidRequest as exc:
                self._reject_invalid(frames, exc, now)
                continue
            method = request.method
            if (permits is not None and users is not None and not permits(users[index], method)
                    and self._forbid(frames[:-1], request, users[index], now)):
                continue
            request_id = request.request_id
            if (method not in declared or full()
                    or (request_id is not None and (request_id in active or request_id in dedupe))):
                self._on_uncommon_request(frames[:-1], request, now)
            else:
                admit(frames[:-1], request, now, wall)

    def _admit(self, envelope: list[bytes], request: Request, now: float, wall: float) -> None:
        """Accept a request: from here on the broker owes it exactly one answer."""
        timeout_ms = request.timeout_ms
        self._seq += 1
        item = Pending(self._seq, request.request_id, request.method, request.priority, request.raw, [envelope],
                       now, wall, now + (self._default_timeout_s if timeout_ms is None else timeout_ms / 1000.0),
                       request.internal)
        if item.request_id is not None:
            self.active[item.request_id] = item
        worker = None if self.queue.has(item.method) else self.workers.pick(item.method)
        if worker is None:
            self.queue.push(item)
        else:
            self._dispatch(item, worker, now)

    def _reject_invalid(self, frames: list[bytes], exc: InvalidRequest, now: float) -> None:
        if len(frames) < 2:
            return  # a ROUTER always prefixes the identity: nothing to answer to
        self.counters["invalid_request"] += 1
        reply = encode_error(exc.request_id, ErrorCode.INVALID_REQUEST, exc.message, exc.details)
        self._send_client(frames[:-1], reply)
        self._record(exc.request_id, _INVALID_METHOD, ErrorCode.INVALID_REQUEST, None, 5, now, now, 0.0, False,
                     message=exc.message)

    def _forbid(self, envelope: list[bytes], request: Request, user: str, now: float) -> bool:
        """Answer a request its key may not make (role too low, or the key revoked since it connected).

        A key the broker has not seen yet was made since its last look at the allow-list (the ZAP
        handler, which admitted it, looks at each connection): it looks again before saying no.
        False when the request is allowed after all.
        """
        access = self.access
        assert access is not None
        if user not in access.names and self._refresh_access() and access.permits(user, request.method):
            return False
        self.counters["forbidden"] += 1
        message, details = access.refusal(user, request.method)
        self._send_client(envelope, encode_error(request.request_id, ErrorCode.FORBIDDEN, message, details))
        self._record(request.request_id, request.method, ErrorCode.FORBIDDEN, None, request.priority, now, now, 0.0,
                     request.internal, request.raw, message)
        return True

    def _on_uncommon_request(self, envelope: list[bytes], request: Request, now: float) -> None:
        """A broker method, a retry of a known request_id, an unknown method or a full queue."""
        method = request.method
        request_id = request.request_id
        if method in BROKER_METHODS:
            self._on_broker_method(envelope, request, now)
            return
        if request_id is not None:
            active = self.active.get(request_id)
            if active is not None:
                self.counters["deduped"] += 1
                active.envelopes.append(envelope)
                return
            cached = self.dedupe.get(request_id)
            if cached is not None:
                self.counters["deduped"] += 1
                self._send_client(envelope, cached)
                return
        if self.draining:
            self.counters["refused_stopping"] += 1
            message = "TACore is stopping and takes no new requests; it was not run"
            self._send_client(envelope, encode_error(request_id, ErrorCode.UNAVAILABLE, message,
                                                     {"reason": "stopping"}))
            self._record(request_id, method, ErrorCode.UNAVAILABLE, None, request.priority, now, now, 0.0,
                         request.internal, request.raw, message)
            return
        if method not in self.declared:
            self.counters["unknown_method"] += 1
            message = f"no worker serves method {method!r}"
            self._send_client(envelope, encode_error(request_id, ErrorCode.UNKNOWN_METHOD, message,
                                                     {"method": method}))
            self._record(request_id, method, ErrorCode.UNKNOWN_METHOD, None, request.priority, now, now, 0.0,
                         request.internal, request.raw, message)
            return
        if self.queue.full():
            self.counters["busy"] += 1
            message = f"queue full ({len(self.queue)} pending, {self.queue.bytes} bytes); retry later"
            self._send_client(envelope, encode_error(
                request_id, ErrorCode.BUSY, message,
                {"queue_limit": self.queue.limit, "queue_max_bytes": self.queue.max_bytes}))
            self._record(request_id, method, ErrorCode.BUSY, None, request.priority, now, now, 0.0, request.internal,
                         request.raw, message)
            return
        self._admit(envelope, request, now, time.time())  # none of the above after all: an ordinary request

    def _on_broker_method(self, envelope: list[bytes], request: Request, now: float) -> None:
        method = request.method
        request_id = request.request_id
        if method == "broker.status":
            data = self.status()
        elif method == "broker.metrics":
            data = self.metrics()
        elif method == "broker.report":
            try:
                data = self.reports.accept(request.params)
            except InvalidParams as exc:
                self._send_client(envelope, encode_error(request_id, ErrorCode.INVALID_PARAMS, exc.message,
                                                         exc.details))
                return
        else:
            parsed = cancel.parse(method, request.params)
            if isinstance(parsed, list):
                self._send_client(envelope, encode_error(request_id, ErrorCode.INVALID_PARAMS,
                                                         f"invalid params for {method}", parsed))
                return
            data = cancel.cancel(self, parsed[0], cancel.CANCEL_METHODS[method], parsed[1], now)
        self._send_client(envelope, encode_reply(request_id, data, (time.monotonic() - now) * 1000.0))

    def _send_client(self, envelope: list[bytes], body: bytes) -> None:
        self._to_clients.append((envelope, body))

    def _flush(self) -> None:
        """Send what this wake-up produced: one REQUEST message per worker, then the replies back to back."""
        now = time.monotonic()
        while self._to_workers:
            records, self._to_workers = self._to_workers, []
            for record in records:
                items, record.outbox = record.outbox, []
                if record.dead_at is not None or not items:
                    continue  # removed meanwhile (_worker_gone dealt with its requests), or all cancelled
                frame = wp.pack_requests([(item.seq, int((item.deadline - now) * 1000.0) + 1, item.raw)
                                          for item in items])
                try:
                    send_frames(self.backend, [record.identity, frame])
                except zmq.ZMQError as exc:  # never reached the worker: none of them ran, so they go back
                    log.warning("worker %s unreachable (%s)", record.worker_id, exc)
                    for item in reversed(items):
                        if self.workers.unassign(record, item.seq) is item and not item.answered:
                            item.attempts -= 1
                            self.queue.push(item, front=True)
                    self._worker_gone(record, "unreachable")
        if self.cancels:
            overruns.send_cancels(self)
        if self._to_clients:
            replies, self._to_clients = self._to_clients, []
            frontend = self.frontend
            for envelope, body in replies:
                try:
                    send_routed(frontend, envelope, body)
                except zmq.ZMQError as exc:  # client gone (EHOSTUNREACH) or not reading (EAGAIN)
                    self.counters["reply_undeliverable"] += 1
                    log.debug("reply undeliverable: %s", exc)

    # -- workers ----------------------------------------------------------------------------------
    def _on_worker(self, frames: list[bytes], user: str | None) -> None:
        identity = frames[0]
        command = frames[1][:wp.COMMAND_LENGTH] if len(frames) > 1 else b""
        record = self.workers.live.get(identity)
        if record is not None and record.user != user:
            record = None  # another key on a routing identity a registered worker left: not that worker
        now = time.monotonic()
        if command == wp.REPLY:
            if record is None:
                self._send_worker(identity, [wp.DISCONNECT])
                return
            record.expires_at = now + self._liveness_s
            try:
                if len(frames) != 2:
                    raise wp.MalformedMessage(f"REPLY in {len(frames) - 1} frames, not 1")
                self._on_replies(record, frames[1], now)
            except wp.MalformedMessage as exc:
                # What follows cannot be trusted: remove it now (its requests are re-run or answered at once,
                # not after its heartbeat expires) and tell it to register anew.
                log.warning("worker %s broke the protocol: %s", record.worker_id, exc)
                self._worker_gone(record, f"protocol error: {exc}")
                self._send_worker(identity, [wp.DISCONNECT])
                return
            self._feed(record, now)
        elif command == wp.HEARTBEAT:
            if record is None:
                self._send_worker(identity, [wp.DISCONNECT])
                return
            record.expires_at = now + self._liveness_s
            record.last_heartbeat = time.time()
        elif command == wp.READY:
            if record is not None:
                self._worker_gone(record, "re-registered")
            self._on_ready(identity, frames[2] if len(frames) > 2 else b"{}", now, user)
        elif command == wp.DISCONNECT:
            if record is not None:
                self._worker_gone(record, "disconnected")
        elif command == wp.HANDBACK:
            if record is None:
                self._send_worker(identity, [wp.DISCONNECT])
                return
            record.expires_at = now + self._liveness_s
            try:
                if len(frames) != 2:
                    raise wp.MalformedMessage(f"HANDBACK in {len(frames) - 1} frames, not 1")
                stuck, seqs = wp.unpack_handback(frames[1])
            except wp.MalformedMessage as exc:
                log.warning("worker %s broke the protocol: %s", record.worker_id, exc)
                self._worker_gone(record, f"protocol error: {exc}")
                self._send_worker(identity, [wp.DISCONNECT])
                return
            overruns.on_handback(self, record, stuck, seqs, now)
        else:
            log.warning("dropped a malformed message from worker %r (%d frames)", identity, len(frames))

    def _on_ready(self, identity: bytes, payload: bytes, now: float, user: str | None) -> None:
        try:
            info = orjson.loads(payload)
            methods_decl = info["methods"]
            methods = frozenset(str(m) for m in methods_decl)
            idempotent = frozenset(str(m) for m, spec in methods_decl.items() if spec.get("idempotent"))
            roles = {str(m): str(parse_role(str(spec["role"]))) for m, spec in methods_decl.items()
                     if spec.get("role") is not None}
            credit = max(1, min(int(info.get("credit", 1)), 64))
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            self._refuse_worker(identity, repr(identity), f"unreadable READY ({type(exc).__name__}: {exc})")
            return
        record = WorkerRecord(identity, str(info.get("worker_id") or identity.hex()), info.get("pid"),
                              info.get("host"), str(info.get("kind", "worker")), methods, idempotent, credit,
                              now + self._liveness_s, roles, user)
        refusal = self._registration_refusal(record)
        if refusal is not None:
            self._refuse_worker(identity, record.worker_id, refusal)
            return
        self.workers.add(record)
        self.declared.update(methods - BROKER_METHODS)  # the broker answers those itself
        if self.access is not None:
            record.key = self.access.name(user)
            self.access.declare_all({m: parse_role(roles[m]) if m in roles else None for m in methods})
        self._send_worker(identity, [wp.HEARTBEAT, views.heartbeat_snapshot(self)])
        log.info("worker %s ready (pid %s, %d methods, credit %d)", record.worker_id, record.pid,
                 len(methods), credit)
        self._feed(record, now)

    def _registration_refusal(self, record: WorkerRecord) -> str | None:
        access = self.access
        if access is not None and not access.is_worker_key(record.user):
            if record.user not in access.names:
                self._refresh_access()  # made since the broker last looked
            if not access.is_worker_key(record.user):
                return f"key {access.name(record.user)!r} is not a worker key (revoked?)"
        return self.workers.refusal(record)

    def _refuse_worker(self, identity: bytes, worker_id: str, reason: str) -> None:
        """Turn a worker away: logged, counted, and told DISCONNECT with the reason."""
        self.counters["workers_refused"] += 1
        log.warning("worker %s refused: %s", worker_id, reason)
        self._send_worker(identity, [wp.DISCONNECT, reason.encode()])

    def _on_replies(self, record: WorkerRecord, frame: bytes, now: float) -> None:
        """Answer each request a REPLY frame carries; raises MalformedMessage where the frame breaks."""
        workers = self.workers
        unassign = workers.unassign
        observe = workers.observe
        finish = self._finish
        worker_id = record.worker_id
        for seq, ok, processing_ms, code, body in wp.iter_replies(frame):
            item = unassign(record, seq)
            if item is None:
                log.warning("worker %s replied to an unknown request", worker_id)
                continue
            if seq == record.stuck_seq:
                record.stuck_seq = 0
            if item.answered:  # its client had its answer (deadline, cancel): this one is dropped
                overruns.late(self, item, body)
                continue
            observe(item.method, processing_ms)
            record.served += 1
            if ok:
                finish(item, body, None, worker_id, processing_ms, now, cache=True)
            else:
                record.failed += 1
                error = code or ErrorCode.INTERNAL
                # a retryable error (nothing ran, or a dependency was down) is not kept: a retry is a fresh try
                finish(item, body, error, worker_id, processing_ms, now, cache=error not in RETRYABLE_CODES)
        workers.freed(record)

    def _feed(self, record: WorkerRecord, now: float) -> None:
        """Give ``record`` queued work while it has credit (never an expired request)."""
        workers = self.workers
        while record.free > 0 and len(self.queue) and not self._stopping and not record.stuck_seq:
            if not record.inflight:
                item = self.queue.pop_for(record.methods)
            elif record.slow_inflight:
                return
            else:
                item = self.queue.pop_for(record.methods, workers.fast)
            if item is None:
                return
            if item.deadline <= now:
                self._answer_timeout(item, now)
                continue
            self._dispatch(item, record, now)

    def _dispatch(self, item: Pending, record: WorkerRecord, now: float) -> None:
        item.attempts += 1
        item.dispatched = now
        item.slow = not self.workers.is_fast(item.method)
        self.workers.assign(record, item)
        self.inflight_deadlines.push(item, self.workers.inflight)
        if not record.outbox:
            self._to_workers.append(record)
        record.outbox.append(item)

    def _send_worker(self, identity: bytes, frames: list[bytes]) -> None:
        with contextlib.suppress(zmq.ZMQError):
            send_frames(self.backend, [identity, *frames])

    def _worker_gone(self, record: WorkerRecord, reason: str) -> None:
        """Remove a worker; re-dispatch its idempotent requests once, answer the rest WORKER_LOST."""
        self.workers.remove(record, reason)
        if reason == "disconnected" and not record.inflight:  # an orderly stop: the worker said goodbye
            log.info("worker %s (pid %s) disconnected", record.worker_id, record.pid)
        else:
            log.warning("worker %s (pid %s) removed: %s; %d request(s) in flight", record.worker_id, record.pid,
                        reason, len(record.inflight))
        now = time.monotonic()
        lost = self.workers.unassign_all(record)
        for item in lost:
            if item.answered:
                continue  # its client had its answer (deadline, cancel)
            if self.workers.idempotent.get(item.method) and item.attempts < 2 and item.deadline > now:
                self.counters["redispatched"] += 1
                worker = self.workers.pick(item.method)
                if worker is None:
                    self.queue.push(item, front=True)
                else:
                    self._dispatch(item, worker, now)
            else:
                self.counters["worker_lost"] += 1
                body = encode_error(item.request_id, ErrorCode.WORKER_LOST,
                                    f"worker {record.worker_id} was lost while running the request; "
                                    "it may or may not have taken effect",
                                    {"worker_id": record.worker_id, "reason": reason},
                                    (now - item.received) * 1000.0)
                self._finish(item, body, ErrorCode.WORKER_LOST, record.worker_id, 0.0, now, cache=True)

    def _heartbeat(self, now: float) -> None:
        for record in self.workers.expired(now):
            self._worker_gone(record, "heartbeat expired")
        if self.access is not None:
            self._refresh_access()
        self.health = views.health(self)
        self._spin_s = self.spin.tick(now, self.counters["spins"])
        snapshot = views.heartbeat_snapshot(self)
        for identity in list(self.workers.live):
            self._send_worker(identity, [wp.HEARTBEAT, snapshot])
        self.dedupe.prune(now)

    def _refresh_access(self) -> bool:
        """Re-read the allow-list if it changed; workers whose key was revoked are removed and told DISCONNECT."""
        access = self.access
        assert access is not None
        if not access.refresh():
            return False
        for record in list(self.workers.live.values()):
            if not access.is_worker_key(record.user):
                self._worker_gone(record, "key revoked")
                self._send_worker(record.identity, [wp.DISCONNECT, b"key revoked"])
        return True

    # -- answers ----------------------------------------------------------------------------------
    def _answer_timeout(self, item: Pending, now: float) -> None:
        self.counters["timeout"] += 1
        waited_ms = (now - item.received) * 1000.0
        reason = "no live worker serves it" if not self.workers.servers.get(item.method) else "queue wait"
        body = encode_error(item.request_id, ErrorCode.TIMEOUT,
                            f"deadline passed after {waited_ms:.0f} ms in the queue ({reason}); it was not run",
                            {"waited_ms": round(waited_ms, 3), "state": "queued"}, waited_ms)
        self._finish(item, body, ErrorCode.TIMEOUT, None, 0.0, now, cache=False)

    def finish(self, item: Pending, body: bytes, error_code: str | None, worker_id: str | None,
               processing_ms: float, now: float, *, cache: bool) -> None:
        """Answer ``item``'s client(s) with ``body`` (for the broker's helpers, e.g. ``cancel``)."""
        self._finish(item, body, error_code, worker_id, processing_ms, now, cache=cache)

    def _finish(self, item: Pending, body: bytes, error_code: str | None, worker_id: str | None,
                processing_ms: float, now: float, *, cache: bool) -> None:
        for envelope in item.envelopes:
            self._send_client(envelope, body)
        self.counters["answered"] += 1
        request_id = item.request_id
        if request_id is not None:
            if self.active.get(request_id) is item:
                del self.active[request_id]
            if cache:
                self.dedupe.put(request_id, body, now)
        received = item.received
        queue_ms = ((item.dispatched or now) - received) * 1000.0
        total_ms = (now - received) * 1000.0
        (self.internal_stats if item.internal else self.stats).observe(item.method, error_code, total_ms, queue_ms)
        if self.records is not None:
            # the request as it came (a fragment of the frame already parsed: no work here) and an error's reply;
            # the recorder keeps their params, secrets redacted, and the error's message
            raw = item.raw
            self.records.add([request_id, item.method, "success" if error_code is None else "error", error_code,
                              worker_id, item.priority, queue_ms, processing_ms, total_ms, item.received_wall,
                              item.received_wall + total_ms / 1000.0, item.internal,
                              orjson.Fragment(raw) if len(raw) <= REQUEST_SHIP_LIMIT else len(raw),
                              None if error_code is None else body.decode("utf-8", "replace")])

    def _record(self, request_id: str | None, method: str, code: str, worker_id: str | None, priority: int,
                received: float, now: float, processing_ms: float, internal: bool, raw: bytes | None = None,
                message: str | None = None) -> None:
        """Log and count a request answered by the broker itself before it was queued (the request log keeps
        the name it asked for; the statistics count every undeclared name under one bucket). ``raw``: its
        frame, when it parsed; ``message``: the error's."""
        total_ms = (time.monotonic() - received) * 1000.0
        counted = method if method in self.declared or method == _INVALID_METHOD else UNKNOWN_METHOD_BUCKET
        (self.internal_stats if internal else self.stats).observe(counted, code, total_ms, 0.0)
        if self.records is not None:
            wall = time.time()
            shipped: Any = None if raw is None else orjson.Fragment(raw) if len(raw) <= REQUEST_SHIP_LIMIT \
                else len(raw)
            self.records.add([request_id, method, "error", code, worker_id, priority, 0.0, processing_ms,
                              round(total_ms, 3), wall - total_ms / 1000.0, wall, internal, shipped, message])

    # -- introspection ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """``broker.status``: workers, queue, counters (shapes in docs/CONTRACTS.md)."""
        return views.status(self)

    def metrics(self) -> dict[str, Any]:
        """``broker.metrics``: per-method counts and latency histograms."""
        return views.metrics(self)

    # -- shutdown ---------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        shutdown.shutdown(self)

    def _close_sockets(self, linger_ms: int) -> None:
        """Close both sockets, then the ZAP handler (its sockets too must close before the context ends)."""
        self.frontend.close(linger=linger_ms)
        self.backend.close(linger=linger_ms)
        if self.access is not None:
            self.access.close()
        if self._own_context:
            self.context.term()
