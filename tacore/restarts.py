"""When to restart a process that exited: at once after a good run, with exponential backoff when it keeps dying.

A process that exits within ``healthy_run_s`` of its start failed "in a row"; each such failure doubles
the wait before the next start, from ``initial_s`` up to ``max_s`` (0.5, 1, 2 ... 60 s). One that ran
longer is restarted at once and its count starts over. So a component that cannot start (a read-only
``DATA_DIR``, a database it needs, a bad setting) costs a start a minute at worst instead of a core,
and the supervisor can say so (``to_wire``, reported to the broker and shown in ``/health``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class RestartBackoff:
    initial_s: float = 0.5
    max_s: float = 60.0
    healthy_run_s: float = 30.0
    restarts: int = 0
    failures_in_row: int = 0
    last_exit_code: int | None = None
    last_exit_at: float | None = None  # epoch seconds
    next_start_at: float | None = None  # time.monotonic(); None while it runs

    def exited(self, exit_code: int | None, ran_s: float, now: float) -> float:
        """Record an exit after ``ran_s`` seconds of running; returns the wait before the next start."""
        self.restarts += 1
        self.last_exit_code = exit_code
        self.last_exit_at = time.time()
        if ran_s >= self.healthy_run_s:
            self.failures_in_row = 0
            delay = 0.0
        else:
            self.failures_in_row += 1
            delay = min(self.max_s, self.initial_s * 2 ** (self.failures_in_row - 1))
        self.next_start_at = now + delay
        return delay

    def due(self, now: float) -> bool:
        """True once the wait is over (the caller starts the process and calls ``started``)."""
        return self.next_start_at is not None and now >= self.next_start_at

    def started(self) -> None:
        self.next_start_at = None

    def to_wire(self, now: float) -> dict[str, Any]:
        waiting = None if self.next_start_at is None else round(max(0.0, self.next_start_at - now), 3)
        return {"running": self.next_start_at is None, "restarts": self.restarts,
                "failures_in_row": self.failures_in_row, "last_exit_code": self.last_exit_code,
                "last_exit_at": self.last_exit_at, "next_start_in_s": waiting}
