"""The recorder process: receives batches of request records from the broker and writes the request log.

Keeping the database off the broker's loop is what lets the broker answer at full speed; here a
batch is one transaction. It also writes a line to ``performance.log`` every few seconds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import orjson
import zmq

from tacore.settings import Settings
from tacore.store.migrate import upgrade_schema
from tacore.store.request_log import insert_records, make_engine

log = logging.getLogger("tacore.recorder")
perf_log = logging.getLogger("tacore.performance")

_PERF_EVERY_S = 10.0


class RequestRecorder:
    def __init__(self, settings: Settings, context: zmq.Context[Any] | None = None) -> None:
        self.settings = settings
        self.context: zmq.Context[Any] = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, 10_000)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(settings.recorder_endpoint)  # first: records queue here while the schema is checked
        self.engine = make_engine(settings.sqlalchemy_url)
        upgrade_schema(self.engine)  # a no-op under tacore serve, which migrated before starting anything
        self.written = 0
        self.failed_batches = 0
        self._pending: list[list[Any]] = []
        self._window: list[float] = []

    def run(self, stop: threading.Event) -> None:
        flush_s = self.settings.request_log_flush_ms / 1000.0
        batch_size = self.settings.request_log_batch_size
        last_flush = time.monotonic()
        last_perf = last_flush
        log.info("recorder writing the request log to %s", self.engine.url.render_as_string(hide_password=True))
        while not stop.is_set():
            if self.socket.poll(int(flush_s * 1000)):
                self._drain()
            now = time.monotonic()
            if self._pending and (len(self._pending) >= batch_size or now - last_flush >= flush_s):
                self._write()
                last_flush = now
            if now - last_perf >= _PERF_EVERY_S:
                self._performance_line(now - last_perf)
                last_perf = now
        # shutdown: take what the broker still sends (it flushes on its way out), then write it all
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.5:
            if self.socket.poll(100):
                self._drain()
                quiet_since = time.monotonic()
        self._write()
        self.socket.close()
        log.info("recorder stopped: %d records written", self.written)

    def _drain(self) -> None:
        while True:
            try:
                message = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                records = orjson.loads(message)
            except orjson.JSONDecodeError:
                log.warning("recorder: dropped an unreadable batch")
                continue
            self._pending.extend(records)
            self._window.extend(r[8] for r in records)

    def _write(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        for attempt in range(3):
            try:
                self.written += insert_records(self.engine, rows)
                return
            except Exception:
                log.exception("recorder: writing %d records failed (attempt %d)", len(rows), attempt + 1)
                time.sleep(0.2 * (attempt + 1))
        self.failed_batches += 1
        if len(self._pending) + len(rows) <= self.settings.request_log_buffer:
            self._pending = rows + self._pending  # keep them for the next round

    def _performance_line(self, span_s: float) -> None:
        window, self._window = self._window, []
        if not window:
            return
        window.sort()
        count = len(window)
        perf_log.info("requests=%d rate=%.1f/s avg_ms=%.3f p95_ms=%.3f p99_ms=%.3f processing_time_max_ms=%.3f",
                      count, count / span_s, sum(window) / count, window[int(0.95 * (count - 1))],
                      window[int(0.99 * (count - 1))], window[-1])


def yield_to_requests() -> str:
    """Put this process (every thread it has, and those it starts later) behind every request-serving one.

    A batch insert takes a core for a few milliseconds; at normal priority the scheduler let it run
    out its slice while a woken broker or worker waited, which showed as 3-5 ms stalls every flush.
    A SCHED_IDLE task is preempted at once by any other; ``nice 19`` is the fallback where the
    policy does not exist. It is called once the recorder is set up (socket bound, schema checked):
    under SCHED_IDLE a busy machine may leave it no CPU for its start-up. Returns the policy it got.
    """
    threads = [int(tid) for tid in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    if hasattr(os, "SCHED_IDLE"):
        try:
            for tid in threads:  # the policy is per thread (ZeroMQ's I/O thread exists already)
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            return "SCHED_IDLE"
        except OSError as exc:
            log.warning("recorder: SCHED_IDLE refused (%s); using nice 19", exc)
    for tid in threads:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
    return "nice 19"


def run(settings: Settings) -> None:
    """Process entry point."""
    from tacore.logconfig import configure_logging
    from tacore.signals import stop_event_on_signals

    configure_logging(settings, "recorder")
    stop = stop_event_on_signals()
    recorder = RequestRecorder(settings)
    if settings.recorder_idle_priority:
        log.info("recorder runs at background priority (%s)", yield_to_requests())
    recorder.run(stop)
