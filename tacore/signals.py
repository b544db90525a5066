"""Turning SIGTERM/SIGINT into a ``threading.Event`` safely.

A signal handler runs on the main thread between bytecodes, possibly while that thread is inside
``Event.wait`` holding the event's lock; calling ``Event.set`` there deadlocks. The handler hands
the ``set`` to a short-lived thread instead.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_event_on_signals(*signums: signal.Signals) -> threading.Event:
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=stop.set, name="stop-signal", daemon=True).start()

    for signum in signums or (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    return stop


def drain_and_stop_events() -> tuple[threading.Event, threading.Event]:
    """``(leave, stop)`` for a process that drains before it stops (the broker).

    SIGUSR1 sets ``leave`` only: stop taking new work and finish what is in hand. SIGTERM or SIGINT
    set both: stop now. The process's loop waits on ``leave`` and then, unless ``stop`` is set, drains
    until it is.
    """
    leave = threading.Event()
    stop = threading.Event()

    def set_both() -> None:
        stop.set()
        leave.set()

    def on_drain(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=leave.set, name="drain-signal", daemon=True).start()

    def on_stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=set_both, name="stop-signal", daemon=True).start()

    signal.signal(signal.SIGUSR1, on_drain)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_stop)
    return leave, stop
