"""The worker runtime: a DEALER that registers its methods, runs requests, heartbeats and reconnects.

Handlers run in the thread that calls ``run`` (no hand-off on the hot path), which owns the socket
and sends the heartbeats; while a handler runs it lends the socket (a lock) to a small side thread
that beats instead, so a handler that takes seconds does not make the worker look dead. When the
broker goes silent or says DISCONNECT, the worker drops its socket, waits (exponential backoff with
jitter) and registers again on a fresh one.
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
from typing import Any

import orjson
import zmq

from tacore.errors import ErrorCode, TACoreError
from tacore.protocol import worker as wp
from tacore.protocol.envelope import encode_error, encode_reply
from tacore.transport import recv_batch, send_frames
from workers.registry import CallContext, MethodRegistry

log = logging.getLogger("tacore.worker")



class Worker:
    def __init__(self, endpoint: str, registry: MethodRegistry, *, worker_id: str | None = None,
                 kind: str = "worker", credit: int = 2, heartbeat_interval_ms: int = 1000, liveness: int = 3,
                 reconnect_initial_ms: int = 250, reconnect_max_ms: int = 8000,
                 context: zmq.Context[Any] | None = None) -> None:
        self.endpoint = endpoint
        self.registry = registry
        self.worker_id = worker_id or f"{kind}-{uuid.uuid4().hex[:8]}"
        self.kind = kind
        self.credit = credit
        self.hb_interval_s = heartbeat_interval_ms / 1000.0
        self.liveness_s = self.hb_interval_s * liveness
        self.reconnect_initial_s = reconnect_initial_ms / 1000.0
        self.reconnect_max_s = reconnect_max_ms / 1000.0
        self.context: zmq.Context[Any] = context or zmq.Context.instance()
        self.broker_snapshot: dict[str, Any] = {}
        self.sessions = 0  # registrations so far (1 + reconnects)
        self.served = 0
        # Half the credit per batch: the broker refills one half while this worker runs the other, and the
        # replies of a batch leave in one message, so the broker wakes and reads once for several of them.
        self._batch_limit = max(1, credit // 2)
        self._lock = threading.Lock()
        self._socket: zmq.Socket[Any] | None = None
        self._next_beat = 0.0  # time.monotonic() when the next HEARTBEAT is due
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
        sock.connect(self.endpoint)
        self._socket = sock
        self.sessions += 1
        session_over = threading.Event()
        beat = threading.Thread(target=self._heartbeats, args=(sock, session_over, stop), daemon=True,
                                name=f"{self.worker_id}-heartbeat")
        try:
            with self._lock:
                sock.send_multipart([wp.READY, self._ready_payload])
                self._next_beat = time.monotonic() + self.hb_interval_s
            beat.start()
            return self._serve(sock, stop)
        finally:
            session_over.set()
            if beat.is_alive():
                beat.join(timeout=2)
            if stop.is_set():
                with self._lock, contextlib.suppress(zmq.ZMQError):
                    sock.send(wp.DISCONNECT, zmq.NOBLOCK)
                sock.setsockopt(zmq.LINGER, 200)
            sock.close()
            self._socket = None

    def _heartbeats(self, sock: zmq.Socket[Any], session_over: threading.Event, stop: threading.Event) -> None:
        """Beat while the main thread runs a handler; it beats itself the rest of the time.

        It never waits for the socket's lock: the main thread holds it except while handlers run, so
        a blocking acquire would lose every race to the main loop and starve (an idle worker on a busy
        machine then looked dead), and every release would wake this thread for nothing.
        """
        while not session_over.wait(self.hb_interval_s / 4) and not stop.is_set():
            if not self._lock.acquire(blocking=False):
                continue  # the main thread has the socket and beats on time itself
            try:
                if time.monotonic() >= self._next_beat and not self._beat(sock):
                    return
            finally:
                self._lock.release()

    def _beat(self, sock: zmq.Socket[Any]) -> bool:
        """Send a HEARTBEAT (the caller holds the lock); False once the socket is unusable."""
        try:
            sock.send(wp.HEARTBEAT, zmq.NOBLOCK)
        except zmq.ZMQError:
            return False
        self._next_beat = time.monotonic() + self.hb_interval_s
        return True

    def _serve(self, sock: zmq.Socket[Any], stop: threading.Event) -> str:
        with self._lock:  # held while this thread uses the socket; let go only while handlers run
            return self._serve_locked(sock, stop)

    def _serve_locked(self, sock: zmq.Socket[Any], stop: threading.Event) -> str:
        poll_ms = int(min(250.0, self.hb_interval_s * 250.0))
        last_heard = time.monotonic()
        lock = self._lock
        poller = zmq.Poller()  # one for the session: Socket.poll builds a new one on every call
        poller.register(sock, zmq.POLLIN)
        while not stop.is_set():
            now = time.monotonic()
            if now >= self._next_beat:
                self._beat(sock)
            wait_ms = max(0, min(poll_ms, int((self._next_beat - now) * 1000.0) + 1))
            batch = recv_batch(sock, self._batch_limit) if poller.poll(wait_ms) else []
            now = time.monotonic()
            if not batch:
                if now - last_heard > self.liveness_s:
                    return "broker silent"
                continue
            last_heard = now
            requests: list[wp.RequestEntry] = []
            for frames in batch:
                command = frames[0][:wp.COMMAND_LENGTH]
                if command == wp.REQUEST and len(frames) == 1:
                    try:
                        requests.extend(wp.unpack_requests(frames[0]))
                    except wp.MalformedMessage as exc:
                        log.warning("worker %s: %s", self.worker_id, exc)
                elif command == wp.HEARTBEAT:
                    if len(frames) > 1:
                        try:
                            snapshot = orjson.loads(frames[1])
                            snapshot["received_at"] = time.time()
                            self.broker_snapshot = snapshot
                        except orjson.JSONDecodeError:
                            pass
                elif command == wp.DISCONNECT:
                    return "broker said disconnect"
                else:
                    log.warning("worker %s: malformed message from the broker dropped", self.worker_id)
            limit = self._batch_limit
            for start in range(0, len(requests), limit):
                chunk = requests[start:start + limit]
                lock.release()  # the heartbeat thread may use the socket while handlers run
                try:
                    replies = [self._handle(seq, budget_ms, body, now) for seq, budget_ms, body in chunk]
                finally:
                    lock.acquire()
                send_frames(sock, [wp.pack_replies(replies)])
        return "stopping"

    # -- one request ------------------------------------------------------------------------------
    def _handle(self, seq: int, budget_ms: int | None, body: bytes, received: float) -> wp.ReplyEntry:
        """The REPLY entry for one request: the client's reply plus the status the broker keeps stats by."""
        started = time.perf_counter()
        request_id: str | None = None
        code: str | None = None
        try:
            request = orjson.loads(body)
            request_id = request.get("request_id")
            method = request["method"]
            deadline = None if budget_ms is None else received + budget_ms / 1000.0
            if deadline is not None and time.monotonic() >= deadline:
                raise TACoreError("deadline passed before the worker could start it; it was not run",
                                  code=ErrorCode.TIMEOUT)
            spec = self.registry.get(method)
            if spec is None:
                raise TACoreError(f"worker {self.worker_id} does not serve {method!r}", code=ErrorCode.UNKNOWN_METHOD)
            ctx = CallContext(request_id, method, self.worker_id, deadline, self.broker_snapshot)
            data = spec.invoke(request.get("params") or {}, ctx)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            reply = encode_reply(request_id, data, elapsed_ms)
        except TACoreError as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            code = str(exc.code)
            reply = encode_error(request_id, exc.code, exc.message, exc.details, elapsed_ms)
        except Exception as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            log.exception("worker %s: handler failed (request_id=%s)", self.worker_id, request_id)
            code = str(ErrorCode.INTERNAL)
            reply = encode_error(request_id if isinstance(request_id, str) else None, ErrorCode.INTERNAL,
                                 f"{type(exc).__name__}: {exc}", None, elapsed_ms)
        self.served += 1
        return seq, code is None, elapsed_ms, code, reply
