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
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket as socketlib
import sys
import threading
import time
import traceback
import uuid
from typing import Any, Protocol

import orjson
import zmq

from clients.curve import CurveKeys, HandshakeWatch
from tacore.errors import RETRYABLE_CODES, Cancelled, ErrorCode, TACoreError
from tacore.protocol import worker as wp
from tacore.protocol.envelope import MIN_PRIORITY, encode_error, encode_reply
from tacore.store.idempotency import IdempotencyStore, StoreUnavailable, params_hash
from tacore.transport import recv_batch, send_frames
from workers.alive import AliveMark
from workers.context import CallContext, CancelSignal, set_current_call
from workers.registry import MethodRegistry, MethodSpec

log = logging.getLogger("tacore.worker")

#: Exit status of a worker process that ended itself because a handler overran (the pool says "recycled").
EXIT_RECYCLED = 75
#: How often the watcher looks for a running handler, and at most how long it waits on the socket while one
#: runs (the precision of deadlines and hand-backs; a CANCEL from the broker wakes it at once).
WATCH_TICK_S = 0.025
_WATCH_TICK_MS = int(WATCH_TICK_S * 1000)
#: ``(budget_ms, request, received)`` of a request the worker holds but has not started (by seq).
_Held = tuple[int | None, bytes, float]
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


class Watchdog(Protocol):
    """A shared double (``multiprocessing.RawValue('d')``): when this process must be gone (monotonic s, 0 = never)."""

    value: float


class _Running:
    """The request being handled: the watcher reads it to cancel, hand back and recycle."""

    __slots__ = ("deadline", "done", "handed_back", "seq", "signal", "started", "stop_at", "urgent")

    def __init__(self, seq: int, started: float, deadline: float | None) -> None:
        self.seq = seq
        self.done = False  # the handler returned: the watcher gives the socket back
        self.urgent = False  # priority 0: its reply leaves at once, never batched behind the next handler
        self.started = started
        self.deadline = deadline
        self.signal = CancelSignal()
        self.stop_at: float | None = None  # set when the worker is told to stop while this runs
        self.handed_back = False


class Worker:
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
        self._held: dict[int, _Held] = {}  # seq -> received, not started (insertion order = arrival)
        self._replies: list[wp.ReplyEntry] = []
        self._running: _Running | None = None
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
            running = self._running = _Running(
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

    # -- the watcher thread -----------------------------------------------------------------------
    def _poke(self) -> None:
        if self._poke_w is not None:
            with contextlib.suppress(OSError):
                os.write(self._poke_w, b"x")

    def _watch(self, sock: zmq.Socket[Any], session_over: threading.Event, stop: threading.Event,
               poke_r: int) -> None:
        """Keep the session alive and the running handler bounded while the main thread is in a handler.

        It never waits for the socket's lock: the main thread holds it except while handlers run, so
        a blocking acquire would lose every race to the main loop and starve (an idle worker on a busy
        machine then looked dead), and every release would wake this thread for nothing. Once it has
        the socket and a handler runs, it waits on the socket (a CANCEL is seen when it arrives, not at
        the next tick) and on a pipe the main thread pokes when the handler returns.
        """
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(poke_r, zmq.POLLIN)
        while not session_over.wait(WATCH_TICK_S):
            if not self._lock.acquire(blocking=False):
                continue  # the main thread has the socket and beats on time itself
            try:
                if not self._watch_once(sock, stop) or not self._watch_handler(sock, stop, poller, poke_r,
                                                                              session_over):
                    return
            except zmq.ZMQError as exc:
                log.warning("worker %s: watcher: %s", self.worker_id, exc)
                return
            finally:
                self._watching = False
                self._lock.release()

    def _watch_handler(self, sock: zmq.Socket[Any], stop: threading.Event, poller: zmq.Poller, poke_r: int,
                       session_over: threading.Event) -> bool:
        """While the handler that runs now goes on: wait on the socket (and the poke), bound it each turn."""
        running = self._running
        while running is not None and not session_over.is_set():
            self._watching = True
            if running.done:  # read after ``_watching`` is set: either this sees it, or the main thread pokes
                return True
            ready = dict(poller.poll(_WATCH_TICK_MS))
            self._watching = False
            if poke_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(poke_r, 64):
                        pass
            if running.done:
                return True
            if not self._watch_once(sock, stop):
                return False
        return True

    def _watch_once(self, sock: zmq.Socket[Any], stop: threading.Event) -> bool:
        now = time.monotonic()
        if now >= self._next_beat and not self._beat(sock):
            return False
        batch = recv_batch(sock, 64)
        if batch:
            self._last_heard = now
            self._absorb(batch, now)
        running = self._running
        if running is not None:
            self._bound(sock, running, now, stop)
        if self._replies:
            self._send_replies(sock)  # replies of earlier requests do not wait for a long handler
        return True

    def _bound(self, sock: zmq.Socket[Any], running: _Running, now: float, stop: threading.Event) -> None:
        """Cancel at the deadline or stop, hand back what waits behind an overrun, recycle past the grace."""
        deadline = running.deadline
        overdue = deadline is not None and now >= deadline
        if overdue:
            running.signal.set("deadline", "the request's deadline passed")
        if stop.is_set():
            running.signal.set("shutdown", "the worker is stopping")
            if running.stop_at is None:
                running.stop_at = now + self.recycle_grace_s
        # Preempted: the broker makes room for urgent work, which must not wait behind what this worker holds
        # (a method measured fast may queue several long calls here before its first one ends).
        preempted = running.signal.kind == "preempt"
        if self._held and (overdue or preempted or running.stop_at is not None
                           or now - running.started >= self.handback_s):
            self._give_back(sock, running.seq, "preempted" if preempted and not overdue else "stuck")
            running.handed_back = True
        if not self.exit_on_overrun:
            return
        limits = [t for t in (running.stop_at, None if deadline is None else deadline + self.recycle_grace_s)
                  if t is not None]
        if limits and now >= min(limits):
            self._recycle(sock, running, now)

    def _give_back(self, sock: zmq.Socket[Any], stuck_seq: int, why: str = "stuck") -> None:
        """Return every held request to the broker; this worker will never start them. The broker feeds this
        worker again once ``stuck_seq`` replies."""
        if not self._held:
            return
        seqs = list(self._held)
        self._held.clear()
        self.handed_back += len(seqs)
        send_frames(sock, [wp.pack_handback(stuck_seq, seqs)])
        log.warning("worker %s: handed %d waiting request(s) back to the broker (%s on %d)", self.worker_id,
                    len(seqs), why, stuck_seq)

    def _recycle(self, sock: zmq.Socket[Any], running: _Running, now: float) -> None:
        """End this process: its handler overran the grace (or ignored a stop); the pool starts a new one."""
        why = "the worker was told to stop" if running.stop_at is not None else "its deadline passed"
        frame = sys._current_frames().get(threading.main_thread().ident or 0)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no stack)"
        log.error("worker %s: request %d still running %.1f s after it started, %.1f s after %s; exiting so "
                  "the pool replaces this process. Handler stack:\n%s", self.worker_id, running.seq,
                  now - running.started, self.recycle_grace_s, why, stack)
        with contextlib.suppress(zmq.ZMQError):
            self._give_back(sock, running.seq)
            if self._replies:
                self._send_replies(sock)
            sock.send(wp.DISCONNECT, zmq.NOBLOCK)
        time.sleep(0.1)  # the I/O thread sends what is queued; os._exit would drop it
        logging.shutdown()
        os._exit(EXIT_RECYCLED)

    # -- one request ------------------------------------------------------------------------------
    def _handle(self, running: _Running, body: bytes) -> tuple[wp.ReplyEntry, str | None, str | None, bool]:
        """The REPLY entry for one request (the client's reply plus the status the broker keeps stats by),
        the request_id it claimed (its record is completed by the caller), its request_id, and whether
        its method is resumable."""
        started = time.perf_counter()
        request_id: str | None = None
        code: str | None = None
        claimed: str | None = None
        resumable = False
        try:
            request = orjson.loads(body)
            request_id = request.get("request_id")
            method = request["method"]
            running.urgent = request.get("priority") == MIN_PRIORITY
            deadline = running.deadline
            if deadline is not None and time.monotonic() >= deadline:
                raise TACoreError("deadline passed before the worker could start it; it was not run",
                                  code=ErrorCode.TIMEOUT)
            spec = self.registry.get(method)
            if spec is None:
                raise TACoreError(f"worker {self.worker_id} does not serve {method!r}", code=ErrorCode.UNKNOWN_METHOD)
            params = request.get("params") or {}
            model = spec.validate(params)
            if running.signal:
                raise Cancelled(f"cancelled before it started ({running.signal.reason}); it was not run",
                                details={"kind": running.signal.kind, "ran": False})
            if not spec.idempotent and isinstance(request_id, str) and self.idempotency is not None:
                stored = self._claim(request_id, spec, params, deadline)
                if stored is not None:
                    elapsed_ms = (time.perf_counter() - started) * 1000.0
                    return (running.seq, stored[0], elapsed_ms, stored[1], stored[2]), None, request_id, False
                claimed = request_id
                resumable = spec.resumable
            ctx = CallContext(request_id, method, self.worker_id, deadline, self.broker_snapshot, running.signal)
            if self._watchdog is not None and deadline is not None:
                self._watchdog.value = deadline + self.recycle_grace_s
            set_current_call(ctx)
            try:
                data = spec.call(model, ctx)
            finally:
                set_current_call(None)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            reply = encode_reply(request_id, data, elapsed_ms)
        except TACoreError as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            code = str(exc.code)
            reply = encode_error(request_id if isinstance(request_id, str) else None, exc.code, exc.message,
                                 exc.details, elapsed_ms)
        except Exception as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            log.exception("worker %s: handler failed (request_id=%s)", self.worker_id, request_id)
            code = str(ErrorCode.INTERNAL)
            reply = encode_error(request_id if isinstance(request_id, str) else None, ErrorCode.INTERNAL,
                                 f"{type(exc).__name__}: {exc}", None, elapsed_ms)
        self.served += 1
        rid = request_id if isinstance(request_id, str) else None
        return (running.seq, code is None, elapsed_ms, code, reply), claimed, rid, resumable

    def _claim(self, request_id: str, spec: MethodSpec, params: Any,
               deadline: float | None) -> tuple[bool, str | None, bytes] | None:
        """Claim a non-idempotent request for its first run; None to run it, else (ok, code, reply) to send."""
        assert self.idempotency is not None
        method = spec.name
        remaining = 0.0 if deadline is None else max(0.0, deadline - time.monotonic())
        lease_s = remaining + self.recycle_grace_s + 1.0 if deadline is not None else 86_400.0
        try:
            found = self.idempotency.claim(request_id, method, params_hash(params), self._owner, lease_s)
            if found.outcome == "lost" and spec.resumable and \
                    self.idempotency.take_over(request_id, self._owner, lease_s):
                log.warning("worker %s: %s %s: its first run ended without a reply (%s); running it again, as "
                            "the method keeps its own durable record", self.worker_id, method, request_id,
                            found.owner)
                return None
        except StoreUnavailable as exc:
            raise TACoreError(f"the idempotency store is unavailable ({exc}); the request was not run",
                              code=ErrorCode.UNAVAILABLE) from None
        if found.outcome == "claimed":
            return None
        if found.outcome == "done":
            return found.ok, found.error_code, found.reply
        first = {"owner": found.owner, "claimed_at": round(found.claimed_at, 3),
                 "lease_until": round(found.lease_until, 3)}
        if found.outcome == "mismatch":
            raise TACoreError(f"request_id {request_id!r} was already used for another call ({found.method}, "
                              "or other params); use a new request_id", code=ErrorCode.CONFLICT, details=first)
        if found.outcome == "running":
            retry_ms = max(50, min(1000, int((found.lease_until - time.time()) * 1000)))
            raise TACoreError(f"the first run of {request_id!r} is still in progress; retry with the same "
                              "request_id for its reply", code=ErrorCode.IN_PROGRESS,
                              details={**first, "retry_after_ms": retry_ms})
        raise TACoreError(f"the first run of {request_id!r} ended without a reply (its worker died or was "
                          "recycled); it may or may not have taken effect", code=ErrorCode.WORKER_LOST,
                          details={**first, "first_run": "interrupted"})
