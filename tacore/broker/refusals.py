"""Connections the frontend could not accept: counted and logged, never silent.

libzmq accepts TCP connections in its I/O thread. When ``accept()`` fails (EMFILE/ENFILE: the
process is out of file descriptors) the client's connection waits in the kernel's backlog,
unanswered, and nothing would say so. A socket monitor reports each failed accept
(``EVENT_ACCEPT_FAILED``); a small thread counts them and logs at most one line every
``_LOG_EVERY_S`` with what happened since the last. The thread sleeps in ``recv`` otherwise: it
costs the routing loop nothing.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import threading
import time
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger("tacore.broker")

_LOG_EVERY_S = 10.0


class AcceptFailureWatch:
    """Counts failed accepts on one bound socket (``failed``, read by ``broker.status``)."""

    def __init__(self, sock: zmq.Socket[Any], name: str) -> None:
        self.name = name
        self.failed = 0
        self._socket = sock
        # MONITOR_STOPPED must be in the mask too, or libzmq never sends it and close() waits out its join
        self._monitor = sock.get_monitor_socket(zmq.EVENT_ACCEPT_FAILED | zmq.EVENT_MONITOR_STOPPED)
        self._logged_at = 0.0
        self._unlogged = 0
        self._thread = threading.Thread(target=self._run, name=f"{name}-accept-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        monitor = self._monitor
        try:
            while True:
                try:
                    event = recv_monitor_message(monitor)
                except zmq.ZMQError:
                    return
                if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                    return
                if event["event"] == zmq.EVENT_ACCEPT_FAILED:
                    self._failed(int(event["value"]))
        finally:
            monitor.close(linger=0)

    def _failed(self, code: int) -> None:
        self.failed += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at < _LOG_EVERY_S:
            return
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        log.error("%s: %d connection(s) refused (accept failed: %s; %d of %d file descriptors in use); "
                  "raise the descriptor limit (ulimit -n) or shed clients", self.name, self._unlogged,
                  errno.errorcode.get(code, str(code)), _open_descriptors(), soft)
        self._logged_at = now
        self._unlogged = 0

    def close(self) -> None:
        """Stop the monitor (the thread sees MONITOR_STOPPED and closes its socket); call before closing the socket."""
        try:
            self._socket.disable_monitor()
        except zmq.ZMQError:
            return
        self._thread.join(1.0)


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (every client connection is a descriptor)
    and log both; returns (soft before, soft now)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("file descriptors: could not raise the limit from %d to %d (%s)", soft, target, exc)
            return soft, soft
        log.info("file descriptors: limit raised from %d to the hard limit %d", soft, target)
        return soft, target
    log.info("file descriptors: limit %d (already the hard limit)", soft)
    return soft, soft
