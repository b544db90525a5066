"""The recorder process: receives batches of request records from the broker and writes the request log.

Keeping the database off the broker's loop is what lets the broker answer at full speed; here a
batch is one transaction. The recorder never lies about the log: records wait in a bounded buffer
(``REQUEST_LOG_BUFFER``) while the database is away, and only past that bound are the oldest dropped,
counted and logged; a database that cannot be reached at start, goes away, or whose SQLite file is
deleted is reported (``broker.report``, see ``tacore.health``) and retried with backoff, never a crash.
It also writes a line to ``performance.log`` every few seconds.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from typing import Any

import orjson
import zmq
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from tacore.health import FULL_BYTES, disk_facts
from tacore.reporting import Facts, StateReporter, reporter_keys
from tacore.settings import Settings
from tacore.store.migrate import upgrade_schema
from tacore.store.request_log import insert_records, make_engine, sqlite_path

log = logging.getLogger("tacore.recorder")
perf_log = logging.getLogger("tacore.performance")

_PERF_EVERY_S = 10.0
_BACKOFF_INITIAL_S = 0.25
_BACKOFF_MAX_S = 5.0
_WRITE_SLICE_S = 0.5  # at most this long writing before the socket is drained again
_DROP_LOG_EVERY_S = 10.0


class RequestRecorder:
    def __init__(self, settings: Settings, context: zmq.Context[Any] | None = None, *, report: bool = True) -> None:
        self.settings = settings
        self.url = settings.sqlalchemy_url
        self.engine: Engine | None = None
        self.context: zmq.Context[Any] = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, 10_000)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(settings.recorder_endpoint)  # first: records queue here while the schema is checked
        self.reporter = StateReporter(settings.client_endpoint, "recorder", self.context,
                                      curve=reporter_keys(settings, "recorder")) if report else None
        self.buffer: deque[list[Any]] = deque()
        self.buffer_limit = settings.request_log_buffer
        self.written = 0
        self.dropped = 0
        self.rejected = 0  # rows a working database refused one by one (never seen with the broker's records)
        self.write_failures = 0
        self.recreated = 0
        self.last_drop_at: float | None = None
        self.database_ok: bool | None = None  # None: nothing tried yet
        self.database_error: str | None = None
        self.database_since = time.time()
        self.recreated_at: float | None = None
        self._sqlite_path = sqlite_path(self.url)
        self._schema_ready = False
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._drops_unlogged = 0
        self._drop_logged_at = 0.0
        self._window: list[float] = []
        # The recorder owns the request log's schema (tacore serve migrates nothing itself): checked here, at
        # normal priority; a database that cannot be reached now is reported and tried again with backoff.
        self._ready()

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        flush_s = self.settings.request_log_flush_ms / 1000.0
        report_s = self.settings.heartbeat_interval_ms / 1000.0
        batch_size = self.settings.request_log_batch_size
        last_flush = time.monotonic()
        last_perf = last_flush
        next_report = last_flush
        log.info("recorder writing the request log to %s (buffer %d records)", self._target(), self.buffer_limit)
        self._ready()
        while not stop.is_set():
            now = time.monotonic()
            wait_s = min(flush_s, next_report - now)
            if self.buffer and self._retry_at > now:
                wait_s = min(wait_s, self._retry_at - now)
            if self.socket.poll(max(0, int(wait_s * 1000))):
                self._drain()
            now = time.monotonic()
            if (self.buffer and now >= self._retry_at
                    and (len(self.buffer) >= batch_size or now - last_flush >= flush_s)):
                self._write(now + _WRITE_SLICE_S)
                last_flush = now
            if now >= next_report:
                self._check_file()
                self._report()
                next_report = now + report_s
            if now - last_perf >= _PERF_EVERY_S:
                self._performance_line(now - last_perf)
                last_perf = now
        # shutdown: take what is still on its way (the supervisor stops the recorder once the broker has
        # shipped every record, so a short quiet spell is enough), then write it all
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.1:
            if self.socket.poll(100):
                self._drain()
                quiet_since = time.monotonic()
        self._retry_at = 0.0
        self._write(time.monotonic() + 10.0)
        if self.buffer:
            log.error("recorder stopping with the database unavailable (%s): %d records not written",
                      self.database_error, len(self.buffer))
        self._report()
        self.socket.close()
        if self.reporter is not None:
            self.reporter.close()
        log.info("recorder stopped: %d records written, %d dropped", self.written, self.dropped)

    def _drain(self) -> None:
        buffer = self.buffer
        while True:
            try:
                message = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                records = orjson.loads(message)
            except orjson.JSONDecodeError:
                log.warning("recorder: dropped an unreadable batch")
                continue
            buffer.extend(records)
            self._window.extend(r[8] for r in records)
        overflow = len(buffer) - self.buffer_limit
        if overflow > 0:
            for _ in range(overflow):
                buffer.popleft()
            self._dropped(overflow)

    def _dropped(self, count: int) -> None:
        """The oldest records went to make room: count them, and say so (at most a line every 10 s)."""
        self.dropped += count
        self.last_drop_at = time.time()
        self._drops_unlogged += count
        now = time.monotonic()
        if now - self._drop_logged_at >= _DROP_LOG_EVERY_S:
            log.error("request log buffer full (%d records) while the database is unavailable (%s): dropped the "
                      "oldest %d record(s), %d in all", self.buffer_limit, self.database_error, self._drops_unlogged,
                      self.dropped)
            self._drops_unlogged = 0
            self._drop_logged_at = now

    # -- writing ----------------------------------------------------------------------------------
    def _write(self, until: float) -> None:
        """Write the buffer, a batch per transaction, oldest first, until empty, failing, or ``until``."""
        batch_size = self.settings.request_log_batch_size
        buffer = self.buffer
        while buffer and time.monotonic() < until:
            if not self._ready():
                return
            assert self.engine is not None
            count = min(batch_size, len(buffer))
            rows = list(itertools.islice(buffer, count))
            try:
                insert_records(self.engine, rows)
            except Exception as exc:
                if not self._failed(exc, rows):
                    return
            else:
                self.written += count
                self._succeeded()
            for _ in range(count):
                buffer.popleft()

    def _ready(self) -> bool:
        """The engine exists and the schema is in place (created again if the SQLite file was deleted)."""
        if self._schema_ready:
            return True
        try:
            if self.engine is None:
                self.engine = make_engine(self.url)
            elif self._sqlite_path is not None:
                self._sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            upgrade_schema(self.engine)
        except Exception as exc:
            self._failed(exc, None)
            return False
        self._schema_ready = True
        return True

    def _check_file(self) -> None:
        """A SQLite file deleted under us (or its directory) is recreated now, loudly, not on the next write."""
        path = self._sqlite_path
        if path is None or not self._schema_ready or path.exists():
            return
        log.error("request log database %s is gone (deleted?): recreating it empty; the rows it held are lost", path)
        self._schema_ready = False
        self.recreated += 1
        self.recreated_at = time.time()
        self._ready()

    def _failed(self, exc: Exception, rows: list[list[Any]] | None) -> bool:
        """A write or the schema failed. True when the rows were dealt with (a working database refused
        some of them: those are counted and skipped); False when the database is away (hold and back off)."""
        self.write_failures += 1
        if rows is not None and _rows_at_fault(exc) and self._probe():
            self._write_one_by_one(rows, exc)
            return True
        message = _describe(exc)
        if self._sqlite_path is not None:
            # SQLite says "disk I/O error" or "database or disk is full": say which, with the space left
            disk = disk_facts(self._sqlite_path.parent)
            free = disk.get("free_bytes")
            if isinstance(free, int) and free < FULL_BYTES:
                message += f" (the file system holding {self._sqlite_path} is full: {free} bytes free)"
            elif disk.get("read_only"):
                message += f" (the file system holding {self._sqlite_path} is read-only)"
        if self._sqlite_path is not None and self._schema_ready and not self._sqlite_path.exists():
            self._schema_ready = False  # the file went away: _check_file/_ready recreate it
        if self.database_ok is not False:
            self.database_since = time.time()
            log.error("request log database %s unavailable (%s): holding up to %d records, retrying with backoff",
                      self._target(), message, self.buffer_limit)
        self.database_ok = False
        self.database_error = message
        self._backoff_s = min(max(self._backoff_s * 2, _BACKOFF_INITIAL_S), _BACKOFF_MAX_S)
        self._retry_at = time.monotonic() + self._backoff_s
        return False

    def _succeeded(self) -> None:
        if self.database_ok is False:
            log.warning("request log database back after %.1f s; writing %d held records",
                        time.time() - self.database_since, len(self.buffer))
        if self.database_ok is not True:
            self.database_since = time.time()
        self.database_ok = True
        self.database_error = None
        self._backoff_s = 0.0
        self._retry_at = 0.0

    def _probe(self) -> bool:
        assert self.engine is not None
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _write_one_by_one(self, rows: list[list[Any]], first: Exception) -> None:
        assert self.engine is not None
        refused = 0
        for row in rows:
            try:
                insert_records(self.engine, [row])
            except Exception:
                refused += 1
            else:
                self.written += 1
        self.rejected += refused
        log.error("request log: the database refused %d of %d records of a batch (%s); those are skipped",
                  refused, len(rows), _describe(first))
        self._succeeded()

    # -- reporting --------------------------------------------------------------------------------
    def facts(self) -> Facts:
        """What ``tacore.health`` reads about the request log (sent to the broker once a heartbeat)."""
        kind = self.engine.dialect.name if self.engine is not None else self.url.split(":", 1)[0].split("+")[0]
        return {
            "database": {"kind": kind, "target": self._target(), "ok": self.database_ok,
                         "error": self.database_error, "since": round(self.database_since, 3),
                         "recreated_at": self.recreated_at},
            "written": self.written, "buffered": len(self.buffer), "buffer_limit": self.buffer_limit,
            "dropped": self.dropped, "last_drop_at": self.last_drop_at, "write_failures": self.write_failures,
            "rejected": self.rejected, "recreated": self.recreated, "pid": os.getpid(),
        }

    def _report(self) -> None:
        if self.reporter is not None:
            self.reporter.send(self.facts())

    def _target(self) -> str:
        if self.engine is not None:
            return self.engine.url.render_as_string(hide_password=True)
        return self.url.split("@")[-1] if "@" in self.url else self.url

    def _performance_line(self, span_s: float) -> None:
        window, self._window = self._window, []
        if not window:
            return
        window.sort()
        count = len(window)
        perf_log.info("requests=%d rate=%.1f/s avg_ms=%.3f p95_ms=%.3f p99_ms=%.3f processing_time_max_ms=%.3f",
                      count, count / span_s, sum(window) / count, window[int(0.95 * (count - 1))],
                      window[int(0.99 * (count - 1))], window[-1])


def _rows_at_fault(exc: Exception) -> bool:
    """The database answered and refused the data (too long, out of range, a constraint), or the driver
    refused a value before sending it; anything else means the database is away or cannot write."""
    return isinstance(exc, (DataError, IntegrityError)) or (
        isinstance(exc, StatementError) and not isinstance(exc, DBAPIError))


def _describe(exc: Exception) -> str:
    inner = getattr(exc, "orig", None) or exc
    return f"{type(inner).__name__}: {str(inner).strip().splitlines()[0] if str(inner).strip() else ''}"[:300]


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
