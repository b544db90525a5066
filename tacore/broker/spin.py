"""Whether the broker may spin (``BROKER_SPIN_US``): only while its spinning takes a core nobody else wants.

The spin saves a lone request two thread wake-ups, which on a VM cost more than the broker's own
work; but it holds a core while it waits. On a 2 vCPU guest shared with other jobs (load average
5-20 from other sessions' test runs), ``bench_broker.py`` measured TACore's one-at-a-time p50
20-25 % and its p99 worse with the spin than without: the core it held was the one the worker or
the client needed, and the broker's thread was preempted about once per spin. Quiet, the spin
bought p50 0.95x of ``zmq.proxy`` against 1.3x without it.

So the broker looks, every ``SAMPLE_SPINS`` spins within a heartbeat interval, at how often its
thread was preempted meanwhile (involuntary context switches, ``getrusage(RUSAGE_THREAD)``). Past
``CONTESTED_SHARE`` of the spins (about one per spin was seen on a full machine, none quiet),
something else was waiting for the CPU: the spin pauses for ``PAUSE_MIN_S``, doubled each time
the contention is still there after a pause (up to ``PAUSE_MAX_S``), and back to the shortest
pause after a sample of uncontested spins. A
pause costs what no spin costs (the wake-ups); a wrong spin cost a core on a full machine.
Where the count does not exist (not Linux) the spin runs as configured.
"""

from __future__ import annotations

import resource

#: Preemptions per spin past which the CPUs count as contested.
#: High: on a 2 vCPU host the client, a worker and the broker already share the cores, and pausing there at
#: 0.1 cost p50 1.65x of zmq.proxy against 1.10x spinning (bench_broker.py, 2026-12-04, load average 3-4).
CONTESTED_SHARE = 0.9
#: Spins a judgement takes: the broker judges after this many within a heartbeat interval.
SAMPLE_SPINS = 64
PAUSE_MIN_S = 5.0
PAUSE_MAX_S = 60.0

_WHO = getattr(resource, "RUSAGE_THREAD", None)


def _preemptions() -> int | None:
    if _WHO is None:
        return None
    return int(resource.getrusage(_WHO).ru_nivcsw)


class SpinGovernor:
    """Used from the broker loop's own thread (``RUSAGE_THREAD`` counts the caller's thread).

    ``due(spins)`` after each spin says when ``SAMPLE_SPINS`` were spun since the window opened;
    ``review`` then judges them. ``tick`` at each heartbeat ends a pause that ran out and drops a
    window too thin to judge (its preemptions then did not happen while spinning).
    """

    def __init__(self, spin_s: float) -> None:
        self.spin_s = spin_s
        self.pauses = 0
        self.paused_until = 0.0
        self._pause_s = PAUSE_MIN_S
        self._window_spins = 0
        self._window_preempted: int | None = None

    def due(self, spins: int) -> bool:
        return spins - self._window_spins >= SAMPLE_SPINS

    def review(self, now: float, spins: int) -> float:
        """Judge the window's spins; the spin (seconds) to use from now."""
        preempted = _preemptions()
        before, spun = self._window_preempted, spins - self._window_spins
        self._open(spins, preempted)
        if preempted is None or before is None:
            return self.spin_s
        if preempted - before >= spun * CONTESTED_SHARE:
            self.pauses += 1
            self.paused_until = now + self._pause_s
            self._pause_s = min(self._pause_s * 2, PAUSE_MAX_S)
            return 0.0
        self._pause_s = PAUSE_MIN_S  # a whole sample uncontested: the next pause starts short
        return self.spin_s

    def tick(self, now: float, spins: int) -> float:
        """Once a heartbeat: the spin (seconds) to use from now."""
        if now < self.paused_until:
            return 0.0
        self._open(spins, _preemptions())
        return self.spin_s

    def _open(self, spins: int, preempted: int | None) -> None:
        self._window_spins = spins
        self._window_preempted = preempted
