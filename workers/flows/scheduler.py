"""The flow scheduler process: owns flow state, serves ``flow.*`` through the broker, and runs every ready
node as a ``node.execute`` request on the worker pool (any host), with its flow's priority.

Two threads: a ``Worker`` serving the ``flow.*`` methods (``workers/methods/flows.py``) and the loop, which
owns a DEALER to the broker's client port (many ``node.execute`` requests in flight, replies matched by
request_id; ``broker.preempt`` and ``broker.cancel`` go the same way) and a SUB to the data agent's
``DATA_READY`` events. Each loop turn hands the replies and events to the engine, which decides and
writes the store (new cycles before their first request), and sends what it decided. A handler's command
wakes the loop through a pipe. After a kill -9 the next process restores the flows, records the ticks it
missed, and asks again, with the same request_id, for every task that was in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import uuid
from typing import Any

import orjson
import zmq

from tacore.flows.core import Action, Cancel, Core, Dispatch, Preempt
from tacore.flows.engine import FlowEngine
from tacore.flows.store import FlowStore
from tacore.settings import Settings
from tacore.transport import recv_batch, send_frames

log = logging.getLogger("tacore.flows")

_MAX_POLL_MS = 200
_RETENTION_EVERY_S = 3600.0
#: How long another thread of this process (the ``flow.*`` handlers, the store's writing thread) may keep the
#: GIL once the loop wants it (CPython's default: 5 ms). The loop is the hop's critical path and sleeps in its
#: poll between turns; with the default a reply that woke it while a handler built a reply or the writing
#: thread ran SQLAlchemy waited up to 5 ms (measured: the slowest hops of a chain sat 4-5 ms at one step).
SWITCH_INTERVAL_S = 0.0005


def slots_for(settings: Settings) -> int:
    return settings.flow_slots or 4 * settings.worker_count


class Scheduler:
    def __init__(self, settings: Settings, *, slots: int | None = None) -> None:
        from tacore.store.migrate import upgrade_schema
        from tacore.store.request_log import make_engine

        self.settings = settings
        db = make_engine(settings.sqlalchemy_url)
        upgrade_schema(db)
        self.engine = FlowEngine(FlowStore(db), Core(slots or slots_for(settings), aging_s=settings.flow_aging_s))
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.engine.wake = self._wake
        self.sent = 0
        self._freed: set[str] = set()  # urgent task ids whose preemption freed a worker (status reply pending)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    # -- the process ---------------------------------------------------------------------------------
    def serve(self, stop: threading.Event) -> None:
        resend = self.engine.restore()  # before the methods answer: a flow.run never races the restore
        worker_stop = threading.Event()
        thread = threading.Thread(target=self._serve_methods, args=(worker_stop,), name="flow-methods", daemon=True)
        thread.start()
        try:
            self.loop(stop, resend)
        finally:
            worker_stop.set()
            thread.join(5.0)
            with self.engine.lock:
                self.engine.store.flush(self.engine.core)
            self.engine.store.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _serve_methods(self, stop: threading.Event) -> None:
        from tacore.auth.credentials import worker_keys
        from workers.methods.flows import flow_registry
        from workers.runtime import Worker

        s = self.settings
        Worker(s.worker_endpoint, flow_registry(self.engine), worker_id="flow-scheduler", kind="flow-scheduler",
               credit=4, heartbeat_interval_ms=s.heartbeat_interval_ms, liveness=s.heartbeat_liveness,
               reconnect_initial_ms=s.reconnect_initial_ms, reconnect_max_ms=s.reconnect_max_ms,
               curve=worker_keys(s)).run(stop)

    def loop(self, stop: threading.Event, resend: list[Action] | None = None) -> None:
        from tacore.auth.credentials import client_keys

        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        sub = ctx.socket(zmq.SUB)
        try:
            for sock in (dealer, sub):
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RCVHWM, 1_000_000)
            dealer.setsockopt(zmq.SNDHWM, 1_000_000)
            keys = client_keys(self.settings)
            if keys is not None:
                keys.apply(dealer)
            dealer.connect(self.settings.client_endpoint)
            sub.connect(self.settings.events_endpoint.replace("0.0.0.0", "127.0.0.1"))
            sub.setsockopt(zmq.SUBSCRIBE, b"kline.")
            poller = zmq.Poller()
            poller.register(dealer, zmq.POLLIN)
            poller.register(sub, zmq.POLLIN)
            poller.register(self._wake_r, zmq.POLLIN)
            self._send(dealer, resend if resend is not None else self.engine.restore())
            next_purge = time.monotonic() + 60.0
            log.info("flow scheduler serving: %d slots, requests to %s, events from %s", self.engine.core.slots,
                     self.settings.client_endpoint, self.settings.events_endpoint)
            while not stop.is_set():
                wake = self.engine.next_wakeup()
                timeout = _MAX_POLL_MS if wake is None else max(0, min(_MAX_POLL_MS, int((wake - time.time())
                                                                                           * 1000.0) + 1))
                ready = dict(poller.poll(timeout))
                again: list[tuple[str, set[str]]] = []
                replies = self._replies(dealer, again) if dealer in ready else []
                events = self._events(sub) if sub in ready else []
                if self._wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._wake_r, 4096):
                            pass
                self._send(dealer, self.engine.step(replies, events, again))
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + _RETENTION_EVERY_S
                    self._purge()
        finally:
            dealer.close()
            sub.close()
            ctx.term()

    def _purge(self) -> None:
        days = self.settings.flow_retention_days
        if days <= 0:
            return
        try:
            removed = self.engine.store.purge(time.time() - days * 86400.0)
        except Exception as exc:  # retention must never stop the scheduler
            log.warning("flow history retention failed: %s", exc)
            return
        if removed:
            log.info("flow history retention: %d cycles older than %g days deleted", removed, days)

    # -- messages ------------------------------------------------------------------------------------
    def _replies(self, dealer: zmq.Socket[Any], again: list[tuple[str, set[str]]]) -> list[tuple[str, dict[str, Any]]]:
        """Node replies by request_id. Each preemption goes with a ``broker.status`` (the broker answers both
        in order): when the preempted request was still queued at the broker (no worker freed), the requests
        its workers run go to ``again`` at once, for another preemption, without a further round trip."""
        out = []
        freed = self._freed
        for frames in recv_batch(dealer, 100_000):
            try:
                reply = orjson.loads(frames[-1])
            except orjson.JSONDecodeError:
                continue
            rid = reply.get("request_id") if isinstance(reply, dict) else None
            if isinstance(rid, str) and not rid.startswith("ctl:"):
                out.append((rid, reply))
            elif isinstance(rid, str) and reply.get("status") != "success":
                log.warning("flow control call %s failed: %s", rid, reply.get("error"))
            elif isinstance(rid, str) and rid.startswith("ctl:pre:"):
                data = reply.get("data") or {}
                if data.get("state") == "dispatched":  # a worker is told: it frees for the urgent task
                    if len(freed) > 10_000:  # status replies that never came
                        freed.clear()
                    freed.add(rid.split(":")[2])
            elif isinstance(rid, str) and rid.startswith("ctl:st:"):
                urgent = rid.split(":")[2]
                if urgent in freed:
                    freed.discard(urgent)
                    continue
                workers = (reply.get("data") or {}).get("workers") or []
                at_workers = {c["request_id"] for w in workers if w.get("state") != "dead"
                              for c in w.get("current", []) if not c.get("answered") and c.get("request_id")}
                again.append((urgent, at_workers))
        return out

    @staticmethod
    def _events(sub: zmq.Socket[Any]) -> list[dict[str, Any]]:
        out = []
        for _ in range(10_000):
            try:
                frames = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                event = orjson.loads(frames[-1])
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("event") == "DATA_READY":
                out.append(event)
        return out

    def _send(self, dealer: zmq.Socket[Any], actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Dispatch):
                frame = self._node_request(action)
            elif isinstance(action, Preempt | Cancel):
                method = "broker.preempt" if isinstance(action, Preempt) else "broker.cancel"
                tag = f"pre:{action.urgent_id}:" if isinstance(action, Preempt) else ""
                frame = orjson.dumps({"request_id": f"ctl:{tag}{uuid.uuid4().hex}", "method": method, "internal": True,
                                      "params": {"request_id": action.request_id, "reason": action.reason},
                                      "timeout_ms": 5000})
            else:
                continue
            _send(dealer, frame)
            self.sent += 1
            if isinstance(action, Preempt):
                _send(dealer, orjson.dumps({
                    "request_id": f"ctl:st:{action.urgent_id}:{uuid.uuid4().hex}", "method": "broker.status",
                    "internal": True, "params": {}, "timeout_ms": 5000}))

    def _node_request(self, action: Dispatch) -> bytes:
        task = action.task
        cycle = self.engine.core.cycles.get((task.flow_id, task.cycle))
        graph = cycle.graph if cycle is not None and cycle.graph is not None else \
            self.engine.core.flows[task.flow_id].graph
        node = graph.nodes[task.node_id]
        return orjson.dumps({
            "request_id": task.request_id, "method": "node.execute", "priority": task.priority,
            "timeout_ms": task.timeout_ms,
            "params": {"flow_id": task.flow_id, "component_id": task.component, "cycle": task.cycle,
                       "node_id": task.node_id, "node_type": task.type, "config": node.config,
                       "inputs": task.input_data or {}, "attempt": task.attempt}})


def _send(dealer: zmq.Socket[Any], frame: bytes) -> None:
    """One request to the broker (behind the DEALER's empty delimiter); blocks only at the high-water mark."""
    try:
        send_frames(dealer, [b"", frame])
    except zmq.Again:
        dealer.send_multipart([b"", frame])


def run(settings: Settings) -> None:
    """Process entry point: serve until SIGTERM/SIGINT."""
    from tacore import heap
    from tacore.logconfig import configure_logging
    from tacore.signals import stop_event_on_signals

    configure_logging(settings, "flow-scheduler")
    stop = stop_event_on_signals()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    scheduler = Scheduler(settings)
    heap.settle()  # start-up is over: its heap is never walked by the collector again
    scheduler.serve(stop)
    log.info("flow scheduler stopped")
