"""Whether the broker may spin (``BROKER_SPIN_US``): only while the core it spins on is one nobody else wants.

The spin saves a lone request two thread wake-ups, which on a VM cost more than the broker's own
work (a halted vCPU is woken through the hypervisor). Each turn of the spin yields the core
(``sched_yield`` in ``Broker._wait``): a thread woken onto the broker's core (its own I/O thread, a
worker, the client) runs at once instead of waiting for the spinner's slice to run out, which
showed as the one-at-a-time p99 of a spin that did not yield. But a yield hands the core to any
runnable task for a whole slice (milliseconds), so where other jobs want the cores the spinner
misses the message it waits for: with more busy processes than CPUs, a yielding spin gave p50 of
several ms where sleeping in ``poll`` gave 0.2 ms.

So the broker looks, every ``SAMPLE_SPINS`` spins (or at a heartbeat, if fewer but at least
``MIN_SPINS`` were spun in its interval), at how long its thread waited for a CPU meanwhile (the
run-queue wait of ``/proc/thread-self/schedstat``), in windows that each hold one run of lone
requests (``restart_window`` when a run begins and when a wake-up takes a batch). A spinner on a
core nobody else wants waits a few us per spin (its I/O thread taking the core for a moment); one
sharing the cores with other work waits more (``CONTESTED_WAIT_S`` says what it catches and what
not). Past ``CONTESTED_WAIT_S`` a spin on average, in ``CONTESTED_WINDOWS`` windows in a row, the
spin pauses for ``PAUSE_MIN_S``, doubled each time the contention is still there after a pause (up
to ``PAUSE_MAX_S``), and back to the shortest pause after a sample of uncontested spins. A pause
costs what no spin costs (the wake-ups). Where the figure does not exist (not Linux) the spin runs as configured.

(The count of involuntary context switches, judged before, cannot tell the two apart: on a quiet
2 vCPU guest the spinner is preempted about once per spin by the threads its request needs, so it
paused the spin there too, and the one-at-a-time p50 went from 0.75x of the plain lbbroker's to
1.15x.)
"""

from __future__ import annotations

from collections.abc import Callable

#: Run-queue wait per spin (seconds) past which the cores count as contested. On a quiet 2 vCPU guest windows of
#: 64 spins waited 2.8 us per spin (median of 576 windows), 73 us (p99), 108 us at most; with one busy process
#: beside the benchmark 56 us (median), where the spin still paid. Not caught: 3-8 busy processes gave 34-100 us a
#: spin (2026-12-05 23:45, compiled broker; an earlier reading of 1.4-2.4 ms did not repeat), where the spin cost
#: one-at-a-time ~0.6-0.9 ms against ~0.3-0.55 ms without; 30 us caught them but paused on a quiet machine too.
CONTESTED_WAIT_S = 250e-6
#: Windows in a row judged contested before the spin pauses: one stall of the machine (a kernel thread taking a
#: core for milliseconds, a burst of other work) fills one window; a pause of 5 s for it cost a quiet benchmark run
#: a third of its spins.
CONTESTED_WINDOWS = 2
#: Spins a judgement takes: the broker judges after this many within a heartbeat interval.
SAMPLE_SPINS = 64
#: Spins a heartbeat's judgement takes at least (fewer say nothing: a spin now and then between bursts).
MIN_SPINS = 16
PAUSE_MIN_S = 5.0
PAUSE_MAX_S = 60.0

_SCHEDSTAT = "/proc/thread-self/schedstat"  # "<ns on a CPU> <ns waiting on a run queue> <slices>"


def run_queue_wait_s() -> float | None:
    """Seconds the calling thread has waited on a run queue so far (None where the kernel does not say)."""
    try:
        with open(_SCHEDSTAT, "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class SpinGovernor:
    """Used from the broker loop's own thread (``/proc/thread-self`` is the caller's thread).

    ``due(spins)`` after each spin says when ``SAMPLE_SPINS`` were spun since the window opened;
    ``review`` then judges them. ``tick`` at each heartbeat ends a pause that ran out and, when no
    whole sample was spun since the last one, judges a window of ``MIN_SPINS``; else it drops the window.
    """

    def __init__(self, spin_s: float, waited: Callable[[], float | None] = run_queue_wait_s) -> None:
        self.spin_s = spin_s
        self._waited = waited  # the thread's run-queue wait so far (seconds), None where unknown
        self.pauses = 0
        self.paused_until = 0.0
        self._pause_s = PAUSE_MIN_S
        self._window_spins = 0
        self._window_waited: float | None = None
        self._reviewed = False  # a whole sample was judged since the last heartbeat
        self._contested = 0  # windows in a row judged contested

    def due(self, spins: int) -> bool:
        return spins - self._window_spins >= SAMPLE_SPINS

    def review(self, now: float, spins: int) -> float:
        """Judge a whole sample's spins; the spin (seconds) to use from now."""
        self._reviewed = True
        return self._judge(now, spins)

    def restart_window(self, spins: int) -> None:
        """A run of lone requests begins or ends: the window starts over. Its run-queue wait is its spins' only
        while every wait in it was a lone one; a loaded broker's waits for the CPU (64 in flight on 2 cores:
        milliseconds a second) before or after a run of spins would read as contested spins, and paused the spin
        for the lone requests after every burst."""
        self._open(spins, self._waited())

    def tick(self, now: float, spins: int) -> float:
        """Once a heartbeat: the spin (seconds) to use from now. If no whole sample was spun since the last
        heartbeat (where the cores are contested each spin can take a slice) a window of at least
        ``MIN_SPINS`` is judged; otherwise the window is dropped (the rest of a sample after a review:
        one stall of the machine in a few spins would read as contention)."""
        if now < self.paused_until:
            return 0.0
        slow = not self._reviewed  # no whole sample since the last heartbeat
        self._reviewed = False
        if slow and spins - self._window_spins >= MIN_SPINS:
            return self._judge(now, spins)
        self._open(spins, self._waited())
        return self.spin_s

    def _judge(self, now: float, spins: int) -> float:
        """Judge the spins since the window opened, open the next window; the spin (seconds) to use from now."""
        waited = self._waited()
        before, spun = self._window_waited, spins - self._window_spins
        self._open(spins, waited)
        if waited is None or before is None:
            return self.spin_s
        if waited - before < spun * CONTESTED_WAIT_S:
            self._contested = 0
            self._pause_s = PAUSE_MIN_S  # an uncontested window: the next pause starts short
            return self.spin_s
        self._contested += 1
        if self._contested < CONTESTED_WINDOWS:
            return self.spin_s
        self._contested = 0
        self.pauses += 1
        self.paused_until = now + self._pause_s
        self._pause_s = min(self._pause_s * 2, PAUSE_MAX_S)
        return 0.0

    def _open(self, spins: int, waited: float | None) -> None:
        self._window_spins = spins
        self._window_waited = waited
