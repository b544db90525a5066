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
