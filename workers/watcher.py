"""The watcher thread: it keeps a worker's session alive and the handler that runs bounded.

While a handler runs, the thread that runs it lends the socket (``Worker._lock``) to this watcher,
which beats, reads what the broker sends (more requests; CANCELs, which reach the running handler
through ``ctx.cancelled`` as soon as they arrive: while it holds the socket it waits on it, not on a
clock), sets ``ctx.cancelled`` at the deadline or a stop, hands the requests waiting behind a
handler that overruns back to the broker (never to start them afterwards), and, in a pool worker,
ends the process when a handler is still running ``recycle_grace_ms`` past its deadline (or after a
stop), so the pool replaces it and its capacity returns.

``HandlerWatcher`` is the part of ``workers.runtime.Worker`` that the watcher thread runs; it shares
the worker's session state under the same lock (declared below, set up by ``Worker.__init__``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Protocol

import zmq

from tacore.protocol import worker as wp
from tacore.transport import recv_batch, send_frames
from workers.context import CancelSignal

log = logging.getLogger("tacore.worker")

#: Exit status of a worker process that ended itself because a handler overran (the pool says "recycled").
EXIT_RECYCLED = 75
#: How often the watcher looks for a running handler, and at most how long it waits on the socket while one
#: runs (the precision of deadlines and hand-backs; a CANCEL from the broker wakes it at once).
WATCH_TICK_S = 0.025
_WATCH_TICK_MS = int(WATCH_TICK_S * 1000)
#: ``(budget_ms, request, received)`` of a request the worker holds but has not started (by seq).
HeldRequest = tuple[int | None, bytes, float]


class Watchdog(Protocol):
    """A shared double (``multiprocessing.RawValue('d')``): when this process must be gone (monotonic s, 0 = never)."""

    value: float


class RunningRequest:
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


class HandlerWatcher:
    """The watcher thread's part of a ``Worker``: ``_watch`` is its body; the session also pokes and hands back."""

    # the worker's session state this thread shares (under ``_lock`` unless said otherwise)
    worker_id: str
    handback_s: float
    recycle_grace_s: float
    exit_on_overrun: bool
    handed_back: int
    _lock: threading.Lock
    _held: dict[int, HeldRequest]
    _replies: list[wp.ReplyEntry]
    _running: RunningRequest | None
    _watching: bool  # read by the main thread without the lock, to know whether to poke
    _poke_w: int | None
    _next_beat: float
    _last_heard: float

    if TYPE_CHECKING:  # the worker's own, used by the watcher too
        def _beat(self, sock: zmq.Socket[Any]) -> bool: ...
        def _absorb(self, batch: list[list[bytes]], now: float) -> None: ...
        def _send_replies(self, sock: zmq.Socket[Any]) -> None: ...

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

    def _bound(self, sock: zmq.Socket[Any], running: RunningRequest, now: float, stop: threading.Event) -> None:
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

    def _recycle(self, sock: zmq.Socket[Any], running: RunningRequest, now: float) -> None:
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

