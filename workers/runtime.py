"""The worker runtime: a DEALER that registers its methods, runs requests, heartbeats and reconnects.

Handlers run in the thread that calls ``run`` (no hand-off on the hot path), which owns the socket
and sends the heartbeats. While a handler runs it lends the socket (a lock) to a watcher thread that
keeps the session alive and the call bounded: it beats, reads what the broker sends (more requests,
CANCELs, which reach the running handler through ``ctx.cancelled`` as soon as they arrive: while it
holds the socket the watcher waits on it, not on a clock), sets ``ctx.cancelled`` at the
deadline, hands the requests waiting behind a handler that overruns back to the broker (never to
start them afterwards), and, in a pool worker, ends the process when a handler is still running
``recycle_grace_ms`` past its deadline (or after a stop), so the pool replaces it and its capacity
returns. When the broker goes silent or says DISCONNECT, the worker drops its socket, waits
(exponential backoff with jitter) and registers again on a fresh one.

This module holds the session, the serving loop, reply batching and the commit barrier; the watcher
thread's part is ``workers.watcher.HandlerWatcher`` and running one request (with its idempotency
claim) is ``workers.invocation.HandlerInvocation``, both mixed into ``Worker`` so every call on the
hot path stays a direct method call on the same object, under the same lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket as socketlib
import threading
import time
import uuid
from typing import Any, Protocol

import orjson
import zmq

from clients.curve import CurveKeys, HandshakeWatch
from tacore.errors import RETRYABLE_CODES, ErrorCode
from tacore.protocol import worker as wp
from tacore.protocol.envelope import encode_error
from tacore.store.idempotency import IdempotencyStore
from tacore.transport import recv_batch, send_frames
from workers.alive import AliveMark
from workers.invocation import HandlerInvocation
from workers.registry import MethodRegistry
from workers.watcher import EXIT_RECYCLED, WATCH_TICK_S, HandlerWatcher, HeldRequest, RunningRequest, Watchdog

__all__ = ["EXIT_RECYCLED", "WATCH_TICK_S", "CommitBarrier", "Watchdog", "Worker"]

log = logging.getLogger("tacore.worker")

#: a reply waiting for the commit barrier: (entry, claimed request_id, request_id, its method is resumable)
_Staged = tuple[wp.ReplyEntry, str | None, str | None, bool]
#: what a claimed request's record is completed with: (request_id, ok, error code, reply)
_Outcome = tuple[str, bool, str | None, bytes]


class CommitBarrier(Protocol):
    """What a worker's handlers stage and one ``commit`` makes durable (the order ledger's group commit).

    A worker given one sends no reply before ``commit`` returned for the batch it belongs to, and
    stores the replies on their idempotency records only after it. ``commit`` raises when it could not
    make every staged effect durable, having undone them all: each successful reply of the batch is
    then answered ``UNAVAILABLE`` (retryable) and its idempotency claim released.
    """

    def commit(self) -> None: ...


class Worker(HandlerWatcher, HandlerInvocation):
    def __init__(self, endpoint: str, registry: MethodRegistry, *, worker_id: str | None = None,
                 kind: str = "worker", credit: int = 2, heartbeat_interval_ms: int = 1000, liveness: int = 3,
                 reconnect_initial_ms: int = 250, reconnect_max_ms: int = 8000,
                 context: zmq.Context[Any] | None = None, idempotency: IdempotencyStore | None = None,
                 handback_ms: int = 100, recycle_grace_ms: int = 5000, exit_on_overrun: bool = False,
                 watchdog: Watchdog | None = None, curve: CurveKeys | None = None,
                 alive: AliveMark | None = None, commit_barrier: CommitBarrier | None = None) -> None:
        if idempotency is None and any(not spec.idempotent for spec in registry):
            raise ValueError("a worker serving non-idempotent methods needs an idempotency store "
                             "(IDEMPOTENCY_URL): without one a retry after a broker restart could run them twice")
        self.endpoint = endpoint
        self.curve = curve  # the worker key, for a broker with keys on
        self.registry = registry
        self.worker_id = worker_id or f"{kind}-{uuid.uuid4().hex[:8]}"
        self.kind = kind
        self.credit = credit
        self.hb_interval_s = heartbeat_interval_ms / 1000.0
        self.liveness_s = self.hb_interval_s * liveness
        self.reconnect_initial_s = reconnect_initial_ms / 1000.0
        self.reconnect_max_s = reconnect_max_ms / 1000.0
        self.context: zmq.Context[Any] = context or zmq.Context.instance()
        self.idempotency = idempotency
        self.handback_s = handback_ms / 1000.0
        self.recycle_grace_s = recycle_grace_ms / 1000.0
        self.exit_on_overrun = exit_on_overrun
        self._watchdog = watchdog
        self._alive = alive  # touched on each broker heartbeat (WORKER_ALIVE_DIR)
        self.barrier = commit_barrier
        #: replies waiting for the barrier's commit: (entry, claimed request_id, request_id, resumable)
        self._staged: list[_Staged] = []
        self.broker_snapshot: dict[str, Any] = {}
        self.sessions = 0  # registrations so far (1 + reconnects)
        self.served = 0
        self.handed_back = 0
        # Replies leave in batches of half the credit: the broker refills one half while this worker runs
        # the other, and it wakes and reads once for several replies. A priority-0 request's reply leaves at
        # once: batched, it would wait for the next handler, or for the watcher's tick if that one is long.
        self._batch_limit = max(1, credit // 2)
        self._lock = threading.Lock()  # the socket and everything below; the main thread lends it while handlers run
        self._held: dict[int, HeldRequest] = {}  # seq -> received, not started (insertion order = arrival)
        self._replies: list[wp.ReplyEntry] = []
        self._running: RunningRequest | None = None
        #: the watcher waits on the socket while a handler runs; the main thread pokes it when the handler ends
        self._watching = False
        self._poke_w: int | None = None
        self._session_end: str | None = None
        self._last_heard = 0.0
        self._next_beat = 0.0  # time.monotonic() when the next HEARTBEAT is due
        self._owner = f"{self.worker_id} pid {os.getpid()}@{socketlib.gethostname()}"
        self._ready_payload = orjson.dumps({
            "worker_id": self.worker_id, "pid": os.getpid(), "host": socketlib.gethostname(), "kind": kind,
            "credit": credit, "methods": registry.declaration(),
        })

    # -- lifecycle --------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set, reconnecting forever when the broker goes away."""
        stop = stop or threading.Event()
        backoff = self.reconnect_initial_s
        while not stop.is_set():
            started = time.monotonic()
            reason = self._session(stop)
            if stop.is_set():
                break
            if time.monotonic() - started > self.liveness_s * 2:
                backoff = self.reconnect_initial_s  # that session was healthy: start over
            delay = backoff * random.uniform(0.5, 1.0)
            log.warning("worker %s: %s; reconnecting in %.2f s", self.worker_id, reason, delay)
            stop.wait(delay)
            backoff = min(backoff * 2, self.reconnect_max_s)

    def _session(self, stop: threading.Event) -> str:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IDENTITY, f"{self.worker_id}#{self.sessions}".encode())
        handshake = None
        if self.curve is not None:
            self.curve.apply(sock)
            handshake = HandshakeWatch(sock)
        sock.connect(self.endpoint)
        self.sessions += 1
        session_over = threading.Event()
        poke_r, self._poke_w = os.pipe()
        os.set_blocking(poke_r, False)
        os.set_blocking(self._poke_w, False)
        watcher = threading.Thread(target=self._watch, args=(sock, session_over, stop, poke_r), daemon=True,
                                   name=f"{self.worker_id}-watcher")
        try:
            with self._lock:
                self._held.clear()
                self._replies.clear()
                self._session_end = None
                sock.send_multipart([wp.READY, self._ready_payload])
                self._next_beat = time.monotonic() + self.hb_interval_s
                self._last_heard = time.monotonic()
            watcher.start()
            reason = self._serve(sock, stop)
            refusal = handshake.check() if handshake is not None and reason == "broker silent" else None
            return f"{reason}: {refusal}" if refusal else reason
        finally:
            session_over.set()
            self._poke()
            if handshake is not None:
                handshake.close()
            if watcher.is_alive():
                watcher.join(timeout=2)
            poke_w, self._poke_w = self._poke_w, None
            os.close(poke_w)
            if not watcher.is_alive():  # else left open: a stuck watcher must not poll a reused descriptor
                os.close(poke_r)
            if stop.is_set():
                with self._lock, contextlib.suppress(zmq.ZMQError):
                    self._give_back(sock, 0)  # held requests run elsewhere, never here
                    sock.send(wp.DISCONNECT, zmq.NOBLOCK)
                sock.setsockopt(zmq.LINGER, 200)
            sock.close()

    def _beat(self, sock: zmq.Socket[Any]) -> bool:
        """Send a HEARTBEAT (the caller holds the lock); False once the socket is unusable."""
        try:
            sock.send(wp.HEARTBEAT, zmq.NOBLOCK)
        except zmq.ZMQError:
            return False
        self._next_beat = time.monotonic() + self.hb_interval_s
        return True

    # -- the main thread --------------------------------------------------------------------------
    def _serve(self, sock: zmq.Socket[Any], stop: threading.Event) -> str:
        with self._lock:  # held while this thread uses the socket; let go only while handlers run
            try:
                return self._serve_locked(sock, stop)
            finally:
                if self._staged:  # the session ends with staged replies: make them durable, send if we can
                    staged, self._staged = self._staged, []
                    entries, later = self._commit_batch(staged)
                    self._replies.extend(entries)
                    with contextlib.suppress(zmq.ZMQError):
                        self._send_replies(sock)
                    self._store_outcomes(later)

    def _serve_locked(self, sock: zmq.Socket[Any], stop: threading.Event) -> str:
        poll_ms = int(min(250.0, self.hb_interval_s * 250.0))
        lock = self._lock
        held = self._held
        poller = zmq.Poller()  # one for the session: Socket.poll builds a new one on every call
        poller.register(sock, zmq.POLLIN)
        while not stop.is_set():
            if self._session_end is not None:
                return self._session_end
            now = time.monotonic()
            if now >= self._next_beat:
                self._beat(sock)
            if not held:
                if self._replies:
                    self._send_replies(sock)
                wait_ms = max(0, min(poll_ms, int((self._next_beat - now) * 1000.0) + 1))
                batch = recv_batch(sock, self._batch_limit) if poller.poll(wait_ms) else []
                now = time.monotonic()
                if not batch:
                    if now - self._last_heard > self.liveness_s:
                        return "broker silent"
                    continue
                self._last_heard = now
                self._absorb(batch, now)
                continue
            seq = next(iter(held))
            budget_ms, body, received = held.pop(seq)
            running = self._running = RunningRequest(
                seq, now, None if budget_ms is None else received + budget_ms / 1000.0)
            lock.release()  # the watcher may use the socket while the handler runs
            try:
                reply, claimed, request_id, resumable = self._handle(running, body)
                if self.barrier is None:
                    self._record_outcome(reply, claimed)
            finally:
                running.done = True
                if self._watching:  # the watcher waits on the socket: wake it so it lets go of the lock
                    self._poke()
                lock.acquire()
                self._running = None
                if self._watchdog is not None:
                    self._watchdog.value = 0.0
            if self.barrier is None:
                self._replies.append(reply)
                if running.handed_back or running.urgent or len(self._replies) >= self._batch_limit or not held:
                    self._send_replies(sock)
                continue
            # group commit: the batch's replies leave once its effects are durable
            self._staged.append((reply, claimed, request_id, resumable))
            if running.handed_back or running.urgent or len(self._staged) >= self._batch_limit or not held:
                staged, self._staged = self._staged, []
                lock.release()  # the watcher beats while the batch commits
                try:
                    entries, later = self._commit_batch(staged)
                finally:
                    lock.acquire()
                self._replies.extend(entries)
                self._send_replies(sock)
                if later:
                    lock.release()
                    try:
                        self._store_outcomes(later)
                    finally:
                        lock.acquire()
        return "stopping"

    def _commit_batch(self, staged: list[_Staged]) -> tuple[list[wp.ReplyEntry], list[_Outcome]]:
        """Commit a staged batch and store its replies on their records: the entries to send, and the
        outcomes of resumable requests, stored after the replies leave (their method's own record
        already answers a retry, so the reply need not wait for this one)."""
        assert self.barrier is not None
        try:
            self.barrier.commit()
        except Exception as exc:
            log.error("worker %s: commit of %d staged repl%s failed: %s", self.worker_id, len(staged),
                      "y" if len(staged) == 1 else "ies", exc)
            message = (f"its effects could not be made durable ({exc}); nothing was recorded: retry with the same "
                       "request_id")
            staged = [((seq, False, ms, str(ErrorCode.UNAVAILABLE),
                        encode_error(rid, ErrorCode.UNAVAILABLE, message, None, ms)), claimed, rid, resumable)
                      if ok else ((seq, ok, ms, code, reply), claimed, rid, resumable)
                      for (seq, ok, ms, code, reply), claimed, rid, resumable in staged]
        now: list[_Outcome] = []
        later: list[_Outcome] = []
        for entry, claimed, _, resumable in staged:
            if claimed is not None and self.idempotency is not None:
                if entry[3] is not None and entry[3] in RETRYABLE_CODES:
                    self.idempotency.release(claimed)
                else:
                    (later if resumable else now).append((claimed, entry[1], entry[3], entry[4]))
        self._store_outcomes(now)
        return [entry for entry, _, _, _ in staged], later

    def _store_outcomes(self, outcomes: list[_Outcome]) -> None:
        if outcomes and self.idempotency is not None:
            self.idempotency.complete_many(outcomes)

    def _record_outcome(self, entry: wp.ReplyEntry, claimed: str | None) -> None:
        """Store a claimed request's reply on its record (or release the claim after a retryable error)."""
        if claimed is None or self.idempotency is None:
            return
        code = entry[3]
        if code is not None and code in RETRYABLE_CODES:
            self.idempotency.release(claimed)  # a retryable error declares the run had no effect
        else:
            self.idempotency.complete(claimed, code is None, code, entry[4])

    def _send_replies(self, sock: zmq.Socket[Any]) -> None:
        replies, self._replies = self._replies, []
        send_frames(sock, [wp.pack_replies(replies)])

    def _absorb(self, batch: list[list[bytes]], now: float) -> None:
        """Take in what the broker sent (whichever thread holds the lock)."""
        for frames in batch:
            command = frames[0][:wp.COMMAND_LENGTH]
            if command == wp.REQUEST and len(frames) == 1:
                try:
                    entries = wp.unpack_requests(frames[0])
                except wp.MalformedMessage as exc:
                    log.warning("worker %s: %s", self.worker_id, exc)
                    continue
                for seq, budget_ms, body in entries:
                    self._held[seq] = (budget_ms, body, now)
            elif command == wp.CANCEL and len(frames) == 1:
                try:
                    cancels = wp.unpack_cancels(frames[0])
                except wp.MalformedMessage as exc:
                    log.warning("worker %s: %s", self.worker_id, exc)
                    continue
                for seq, kind, text in cancels:
                    self._cancel(seq, wp.CANCEL_KINDS.get(kind, "client"), text)
            elif command == wp.HEARTBEAT:
                if self._alive is not None:  # the broker beats only the workers it has registered
                    self._alive.touch(now)
                if len(frames) > 1:
                    try:
                        snapshot = orjson.loads(frames[1])
                        snapshot["received_at"] = time.time()
                        self.broker_snapshot = snapshot
                    except orjson.JSONDecodeError:
                        pass
            elif command == wp.DISCONNECT:
                said = frames[1].decode("utf-8", "replace") if len(frames) > 1 else ""
                self._session_end = f"broker said disconnect: {said}" if said else "broker said disconnect"
            else:
                log.warning("worker %s: malformed message from the broker dropped", self.worker_id)

    def _cancel(self, seq: int, kind: str, text: str) -> None:
        if self._held.pop(seq, None) is not None:  # not started: it never will be
            code = ErrorCode.TIMEOUT if kind == "deadline" else ErrorCode.CANCELLED
            self._replies.append((seq, False, 0.0, str(code), b""))
            return
        running = self._running
        if running is not None and running.seq == seq:
            running.signal.set(kind, text or kind)
