"""The broker: a ROUTER for clients, a ROUTER for workers, and the few verbs that move requests between them.

Majordomo's algorithm with three changes for speed and safety: each wake-up drains every socket
before dispatching, each worker holds a small credit of queued requests so it never waits on the
broker between two calls, and the broker owns deadlines, dedupe and the re-dispatch rule so that a
request is answered exactly once and a non-idempotent one never runs twice.

This module is the loop: the sockets, each wake-up (drain, expire deadlines, heartbeat, flush),
giving workers work and sending what a wake-up produced. What arrives is handled apart, as
functions on the broker's state compiled with it (setup.py): client requests in
``client_requests.py`` (the broker's own methods in ``broker_methods.py``), worker messages in
``worker_messages.py`` (READY in ``registration.py``, a worker's departure in ``worker_loss.py``),
and every answer in ``answers.py``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from typing import Any

import zmq

from tacore.broker import overruns, shutdown, views
from tacore.broker.access import BrokerAccess, secure_sockets
from tacore.broker.answers import answer_timeout
from tacore.broker.client_requests import on_clients
from tacore.broker.dedupe import DedupeCache
from tacore.broker.inflight import InflightDeadlines
from tacore.broker.queue import Pending, PendingQueue
from tacore.broker.records import RecordShipper
from tacore.broker.refusals import AcceptFailureWatch
from tacore.broker.reports import ReportBoard
from tacore.broker.spin import SpinGovernor
from tacore.broker.stats import BrokerStats
from tacore.broker.worker_loss import refresh_access, worker_gone
from tacore.broker.worker_messages import on_worker
from tacore.broker.workers import WorkerRecord, WorkerRegistry
from tacore.protocol import worker as wp
from tacore.settings import Settings
from tacore.transport import recv_batch, send_frames, send_routed

log = logging.getLogger("tacore.broker")

_LONE_WAKEUPS = 4  # wake-ups in a row that took one message each before the broker spins (see _wait)
_DRAIN_LIMIT = 512  # messages taken from one socket per wake-up before looking at the other


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
             "handed_back", "forbidden", "workers_refused", "spin_pauses", "lone_waits"), 0,
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
        self.spin = SpinGovernor(self._spin_s)  # pauses the spin while other work wants the cores
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
                self.queue.limit = 0  # every new request is "queue full": on_uncommon_request refuses it
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
            if taken == 1:
                lone += 1
                if lone == _LONE_WAKEUPS and self._spin_s:  # a run of lone requests begins: so does a spin window
                    self.spin.restart_window(self.counters["spins"])
            else:
                if lone >= _LONE_WAKEUPS and self._spin_s:  # and ends with it (spin.py: windows of lone waits only)
                    self.spin.restart_window(self.counters["spins"])
                lone = 0
            now = time.monotonic()
            if len(self.queue):
                for item in self.queue.expire(now):
                    answer_timeout(self, item, now)
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
        client and the workers), and the spin never takes a core from queued work. Each turn yields the
        core, and the spin pauses while other work wants the cores (``tacore/broker/spin.py``).
        """
        if not (lone >= _LONE_WAKEUPS and timeout_ms and self._spin_s and self._has_idle_worker()):
            return poller.poll(timeout_ms)
        self.counters["lone_waits"] += 1  # one at a time: the broker looks before it sleeps
        ready = poller.poll(0)
        if not ready:  # a spin: the broker waits awake (a message already there is no spin)
            spins = self.counters["spins"] = self.counters["spins"] + 1
            if self.spin.due(spins):  # judged every few dozen spins: paused where other work wants the cores
                self._allow_spin(self.spin.review(time.monotonic(), spins))
            spin_end = time.perf_counter() + self._spin_s
            while not ready and time.perf_counter() < spin_end:
                os.sched_yield()  # a thread woken onto this core runs now, not when the spinner's slice ends
                ready = poller.poll(0)
            if not ready:
                ready = poller.poll(timeout_ms)
        return ready

    def _allow_spin(self, spin_s: float) -> None:
        """Spin for up to ``spin_s`` from now (0: paused), as the governor judged; its pauses show in the counters."""
        self._spin_s = spin_s
        self.counters["spin_pauses"] = self.spin.pauses

    def _has_idle_worker(self) -> bool:
        return not len(self.queue) and self.workers.inflight < len(self.workers.live)

    def _drain_frontend(self) -> int:
        users: list[str] | None = None if self.access is None else []  # with keys: each message's key
        batch = recv_batch(self.frontend, _DRAIN_LIMIT, routed=True, users=users)
        if batch:
            on_clients(self, batch, users)
        return len(batch)

    def _drain_backend(self) -> int:
        users: list[str] | None = None if self.access is None else []
        batch = recv_batch(self.backend, _DRAIN_LIMIT * 2, routed=True, users=users)
        self.counters["worker_messages"] += len(batch)
        if users is None:
            for frames in batch:
                on_worker(self, frames, None)
        else:
            for frames, user in zip(batch, users, strict=True):
                on_worker(self, frames, user)
        return len(batch)

    # -- the heartbeat ----------------------------------------------------------------------------
    def _heartbeat(self, now: float) -> None:
        for record in self.workers.expired(now):
            worker_gone(self, record, "heartbeat expired")
        if self.access is not None:
            refresh_access(self)
        self.health = views.health(self)
        self._allow_spin(self.spin.tick(now, self.counters["spins"]))
        snapshot = views.heartbeat_snapshot(self)
        for identity in list(self.workers.live):
            self._send_worker(identity, [wp.HEARTBEAT, snapshot])
        self.dedupe.prune(now)

    # -- giving workers work ----------------------------------------------------------------------
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
                answer_timeout(self, item, now)
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

    # -- sending ----------------------------------------------------------------------------------
    def _send_client(self, envelope: list[bytes], body: bytes) -> None:
        self._to_clients.append((envelope, body))

    def _send_worker(self, identity: bytes, frames: list[bytes]) -> None:
        with contextlib.suppress(zmq.ZMQError):
            send_frames(self.backend, [identity, *frames])

    def _flush(self) -> None:
        """Send what this wake-up produced: one REQUEST message per worker, then the replies back to back."""
        now = time.monotonic()
        while self._to_workers:
            records, self._to_workers = self._to_workers, []
            for record in records:
                items, record.outbox = record.outbox, []
                if record.dead_at is not None or not items:
                    continue  # removed meanwhile (worker_gone dealt with its requests), or all cancelled
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
                    worker_gone(self, record, "unreachable")
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
