"""How a process tells the broker what it observes about its dependencies (``broker.report``).

Fire and forget, once a heartbeat: a report that cannot leave now (the broker is away) is dropped,
never queued, because the next one supersedes it. The broker answers every report; the answers are
read and discarded. The facts' shapes are what ``tacore.health.assess`` reads.

With keys on (``BROKER_CURVE``), ``broker.report`` needs the ``admin`` role: a reporter presents the
process's client key (``CLIENT_KEY``; under ``tacore serve`` the local admin key). A process without a
usable client key logs why once and does not report (``/health`` then says it is not reporting).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import zmq

if TYPE_CHECKING:
    from clients.curve import CurveKeys
    from tacore.settings import Settings

log = logging.getLogger("tacore.reporting")

Facts = dict[str, Any]


def reporter_keys(settings: Settings, source: str) -> CurveKeys | None:
    """The client keys a reporter presents (None: plaintext); a key that cannot be loaded is logged, and the
    reporter then speaks plaintext, which a keyed broker refuses (the state shows as not reporting)."""
    from tacore.auth.credentials import client_keys
    from tacore.errors import ConfigError

    try:
        return client_keys(settings)
    except ConfigError as exc:
        log.error("%s: cannot report health to the broker: %s", source, exc)
        return None


def _request(source: str, facts: Facts, timeout_ms: int) -> bytes:
    return orjson.dumps({"method": "broker.report", "params": {"source": source, "facts": facts},
                         "priority": 0, "timeout_ms": timeout_ms, "internal": True},
                        option=orjson.OPT_NON_STR_KEYS)


class StateReporter:
    """One DEALER to the broker's frontend; use it from one thread."""

    def __init__(self, endpoint: str, source: str, context: zmq.Context[Any] | None = None,
                 curve: CurveKeys | None = None) -> None:
        self.source = source
        self.sent = 0
        self._own_context = context is None
        self._context: zmq.Context[Any] = context or zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        if curve is not None:
            curve.apply(self._socket)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.IMMEDIATE, 1)  # nothing queues for a broker that is not there
        self._socket.setsockopt(zmq.SNDHWM, 4)
        self._socket.connect(endpoint)

    def send(self, facts: Facts) -> bool:
        """Send ``facts`` now if the broker is connected; False when it could not leave."""
        with contextlib.suppress(zmq.ZMQError):
            while self._socket.poll(0):
                self._socket.recv_multipart(zmq.NOBLOCK)
        body = _request(self.source, facts, 5000)
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

    def __init__(self, endpoint: str, source: str, facts: Callable[[], Facts], interval_s: float,
                 curve: CurveKeys | None = None) -> None:
        self.endpoint = endpoint
        self.source = source
        self.curve = curve
        self.facts = facts
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"report-{source}", daemon=True)

    def start(self) -> ReportLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        reporter = StateReporter(self.endpoint, self.source, curve=self.curve)
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


def send_once(endpoint: str, source: str, facts: Facts, wait_s: float = 1.0, curve: CurveKeys | None = None) -> bool:
    """Send one report and wait (up to ``wait_s``) until the broker has answered it: a process's last words
    before it exits."""
    context: zmq.Context[Any] = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.apply(sock)
    try:
        sock.connect(endpoint)
        body = _request(source, facts, int(wait_s * 1000))
        sock.send_multipart([b"", body])
        return bool(sock.poll(int(wait_s * 1000)))
    finally:
        sock.close(linger=0)
        context.term()
