"""Whether the broker may spin (``BROKER_SPIN_US``): only while its spinning takes a core nobody else wants.

The spin saves a lone request two thread wake-ups, which on a VM cost more than the broker's own
work; but it holds a core while it waits. On a 2 vCPU guest shared with other jobs (load average
5-20 from other sessions' test runs), ``bench_broker.py`` measured TACore's one-at-a-time p50
20-25 % and its p99 worse with the spin than without: the core it held was the one the worker or
the client needed, and the broker's thread was preempted about once per spin. Quiet, the spin
bought p50 0.95x of ``zmq.proxy`` against 1.3x without it.

So the broker looks once per heartbeat at how often its thread was preempted (involuntary context
switches, ``getrusage(RUSAGE_THREAD)``) against how often it spun in that interval. Past
``CONTESTED_SHARE`` of the spins, something else was waiting for the CPU: the spin pauses for
``PAUSE_MIN_S``, doubled each time the contention is still there after a pause (up to
``PAUSE_MAX_S``), and back to the shortest pause after an interval of uncontested spinning. A
pause costs what no spin costs (the wake-ups); a wrong spin cost a core on a full machine.
Where the count does not exist (not Linux) the spin runs as configured.
"""

from __future__ import annotations

import resource

#: Preemptions per spin in an interval past which the CPUs count as contested.
CONTESTED_SHARE = 0.1
#: Fewer preemptions than this in an interval never count (a kernel thread, a timer).
MIN_PREEMPTIONS = 20
PAUSE_MIN_S = 5.0
PAUSE_MAX_S = 60.0

_WHO = getattr(resource, "RUSAGE_THREAD", None)


def _preemptions() -> int | None:
    if _WHO is None:
        return None
    return int(resource.getrusage(_WHO).ru_nivcsw)


class SpinGovernor:
    """Call ``review`` from the broker's own thread once an interval; it returns the spin to use next."""

    def __init__(self, spin_s: float) -> None:
        self.spin_s = spin_s
        self.pauses = 0
        self.paused_until = 0.0
        self._pause_s = PAUSE_MIN_S
        self._preempted: int | None = None  # first read by ``review``: RUSAGE_THREAD counts the caller's thread
        self._spins = 0

    def paused(self, now: float) -> bool:
        return now < self.paused_until

    def review(self, now: float, spins: int) -> float:
        """The spin (seconds) for the next interval, given the broker's ``spins`` counter now."""
        preempted = _preemptions()
        spun, self._spins = spins - self._spins, spins
        before, self._preempted = self._preempted, preempted
        if preempted is None or before is None:
            return self.spin_s
        during = preempted - before
        if not self.spin_s or self.paused(now):
            return 0.0
        if spun and during >= MIN_PREEMPTIONS and during >= spun * CONTESTED_SHARE:
            self.pauses += 1
            self.paused_until = now + self._pause_s
            self._pause_s = min(self._pause_s * 2, PAUSE_MAX_S)
            return 0.0
        if spun:
            self._pause_s = PAUSE_MIN_S
        return self.spin_s
