"""How a process tells the broker what it observes about its dependencies (``broker.report``).

Fire and forget, once a heartbeat: a report that cannot leave now (the broker is away) is dropped,
never queued, because the next one supersedes it. The broker answers every report; the answers are
read and discarded. The facts' shapes are what ``tacore.health.assess`` reads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson
import zmq

log = logging.getLogger("tacore.reporting")

Facts = dict[str, Any]


class StateReporter:
    """One DEALER to the broker's frontend; use it from one thread."""

    def __init__(self, endpoint: str, source: str, context: zmq.Context[Any] | None = None) -> None:
        self.source = source
        self.sent = 0
        self._own_context = context is None
        self._context: zmq.Context[Any] = context or zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.IMMEDIATE, 1)  # nothing queues for a broker that is not there
        self._socket.setsockopt(zmq.SNDHWM, 4)
        self._socket.connect(endpoint)

    def send(self, facts: Facts) -> bool:
        """Send ``facts`` now if the broker is connected; False when it could not leave."""
        with contextlib.suppress(zmq.ZMQError):
            while self._socket.poll(0):
                self._socket.recv_multipart(zmq.NOBLOCK)
        body = orjson.dumps({"method": "broker.report", "params": {"source": self.source, "facts": facts},
                             "priority": 0, "timeout_ms": 5000}, option=orjson.OPT_NON_STR_KEYS)
        try:
            self._socket.send_multipart([b"", body], zmq.NOBLOCK)
        except zmq.ZMQError:
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self._socket.close(linger=0)
        if self._own_context:
            self._context.term()


class ReportLoop:
    """A thread that gathers ``facts()`` and sends them every ``interval_s`` until stopped."""

    def __init__(self, endpoint: str, source: str, facts: Callable[[], Facts], interval_s: float) -> None:
        self.endpoint = endpoint
        self.source = source
        self.facts = facts
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"report-{source}", daemon=True)

    def start(self) -> ReportLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        reporter = StateReporter(self.endpoint, self.source)
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    facts = self.facts()
                except Exception:  # a bug in gathering must not end the reports
                    log.exception("%s: gathering the health facts failed", self.source)
                    continue
                reporter.send(facts)
        finally:
            reporter.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


def send_once(endpoint: str, source: str, facts: Facts, wait_s: float = 1.0) -> bool:
    """Send one report and wait (up to ``wait_s``) until the broker has answered it: a process's last words
    before it exits."""
    context: zmq.Context[Any] = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        body = orjson.dumps({"method": "broker.report", "params": {"source": source, "facts": facts},
                             "priority": 0, "timeout_ms": int(wait_s * 1000)})
        sock.send_multipart([b"", body])
        return bool(sock.poll(int(wait_s * 1000)))
    finally:
        sock.close(linger=0)
        context.term()
