"""The broker's spin governor: it pauses the spin only when the spinning thread waited for a CPU."""

from __future__ import annotations

from tacore.broker.spin import (
    CONTESTED_WAIT_S,
    CONTESTED_WINDOWS,
    MIN_SPINS,
    PAUSE_MAX_S,
    PAUSE_MIN_S,
    SAMPLE_SPINS,
    SpinGovernor,
)

SPIN_S = 250e-6


class Readings:
    """The run-queue wait the governor reads, advanced by the test."""

    def __init__(self) -> None:
        self.total = 0.0

    def __call__(self) -> float:
        return self.total


def _started() -> tuple[SpinGovernor, Readings]:
    """A governor whose first window the first heartbeat opened, and the readings it takes."""
    readings = Readings()
    governor = SpinGovernor(SPIN_S, readings)
    governor.tick(0.0, 0)
    return governor, readings


def _window(governor: SpinGovernor, readings: Readings, spins: int, wait_per_spin_s: float, now: float) -> float:
    """Spin a whole window, waiting ``wait_per_spin_s`` per spin, and return the governor's verdict."""
    readings.total += SAMPLE_SPINS * wait_per_spin_s
    spins += SAMPLE_SPINS
    assert governor.due(spins)
    return governor.review(now, spins)


def _contested(governor: SpinGovernor, readings: Readings, spins: int, now: float) -> float:
    """``CONTESTED_WINDOWS`` windows in a row, each past the threshold: the verdict after the last."""
    verdict = governor.spin_s
    for n in range(CONTESTED_WINDOWS):
        verdict = _window(governor, readings, spins + n * SAMPLE_SPINS, 2 * CONTESTED_WAIT_S, now)
    return verdict


def test_a_spinner_preempted_briefly_on_every_spin_keeps_spinning() -> None:
    # On a quiet 2 vCPU guest the spinner is preempted about once per spin by the threads its own request
    # needs (a few us each): the old count of preemptions paused the spin there; the wait does not.
    governor, readings = _started()
    for n in range(10):
        assert _window(governor, readings, n * SAMPLE_SPINS, 20e-6, float(n)) == SPIN_S
    assert governor.pauses == 0


def test_a_spinner_that_waits_for_a_cpu_pauses_and_the_pause_doubles_while_it_lasts() -> None:
    governor, readings = _started()
    spins = CONTESTED_WINDOWS * SAMPLE_SPINS
    assert _contested(governor, readings, 0, 1.0) == 0.0
    assert (governor.pauses, governor.paused_until) == (1, 1.0 + PAUSE_MIN_S)
    assert governor.tick(1.0 + PAUSE_MIN_S - 0.1, spins) == 0.0  # still paused
    assert governor.tick(1.0 + PAUSE_MIN_S, spins) == SPIN_S  # the pause ran out: spin again
    now = 1.0 + PAUSE_MIN_S
    assert _contested(governor, readings, spins, now) == 0.0
    spins += CONTESTED_WINDOWS * SAMPLE_SPINS
    assert governor.paused_until == now + 2 * PAUSE_MIN_S  # contended again: twice as long
    pause = 2 * PAUSE_MIN_S
    for _ in range(10):
        pause = min(pause * 2, PAUSE_MAX_S)
        now = governor.paused_until
        assert governor.tick(now, spins) == SPIN_S
        _contested(governor, readings, spins, now)
        spins += CONTESTED_WINDOWS * SAMPLE_SPINS
        assert governor.paused_until == now + pause
    assert pause == PAUSE_MAX_S


def test_one_contested_window_alone_does_not_pause_the_spin() -> None:
    # One stall of the machine (a kernel thread taking the core for milliseconds) fills one window, not two.
    governor, readings = _started()
    for n in range(5):
        assert _window(governor, readings, 2 * n * SAMPLE_SPINS, 2 * CONTESTED_WAIT_S, float(n)) == SPIN_S
        assert _window(governor, readings, (2 * n + 1) * SAMPLE_SPINS, 5e-6, float(n)) == SPIN_S
    assert governor.pauses == 0


def test_an_uncontested_window_brings_the_next_pause_back_to_the_shortest() -> None:
    governor, readings = _started()
    step = CONTESTED_WINDOWS * SAMPLE_SPINS
    _contested(governor, readings, 0, 0.0)
    _contested(governor, readings, step, PAUSE_MIN_S)
    assert governor.paused_until == 3 * PAUSE_MIN_S  # the second pause was twice as long
    assert governor.tick(3 * PAUSE_MIN_S, 2 * step) == SPIN_S
    assert _window(governor, readings, 2 * step, 0.0, 3 * PAUSE_MIN_S) == SPIN_S
    _contested(governor, readings, 2 * step + SAMPLE_SPINS, 4 * PAUSE_MIN_S)
    assert governor.paused_until == 4 * PAUSE_MIN_S + PAUSE_MIN_S


def test_a_heartbeat_judges_a_window_of_few_slow_spins_and_drops_a_thinner_one() -> None:
    # Where the cores are contested each spin can take a slice, so a whole sample may not fit in a heartbeat.
    governor, readings = _started()
    readings.total += (MIN_SPINS - 1) * 10 * CONTESTED_WAIT_S
    assert governor.tick(1.0, MIN_SPINS - 1) == SPIN_S  # too few spins to say anything: dropped
    spins = MIN_SPINS - 1
    for beat in range(CONTESTED_WINDOWS):
        readings.total += MIN_SPINS * 10 * CONTESTED_WAIT_S
        spins += MIN_SPINS
        verdict = governor.tick(2.0 + beat, spins)
    assert verdict == 0.0
    assert (governor.pauses, governor.paused_until) == (1, 1.0 + CONTESTED_WINDOWS + PAUSE_MIN_S)


def test_after_a_whole_uncontested_sample_a_heartbeat_drops_the_few_spins_since() -> None:
    # Fast spins reach a whole sample between heartbeats; the few after it may hold one stall of the machine.
    governor, readings = _started()
    assert _window(governor, readings, 0, 5e-6, 0.5) == SPIN_S
    readings.total += 0.01  # one 10 ms stall in the next MIN_SPINS spins
    assert governor.tick(1.0, SAMPLE_SPINS + MIN_SPINS) == SPIN_S
    assert governor.pauses == 0


def test_waits_before_the_window_opened_are_not_judged() -> None:
    # The heartbeat opens a new window: what the thread waited while it slept in poll (not spinning) is left out.
    readings = Readings()
    governor = SpinGovernor(SPIN_S, readings)
    readings.total = 5.0
    governor.tick(0.0, 0)
    assert _window(governor, readings, 0, 0.0, 0.0) == SPIN_S


def test_without_a_reading_the_spin_runs_as_configured() -> None:
    governor = SpinGovernor(SPIN_S, lambda: None)
    governor.tick(0.0, 0)
    assert governor.review(1.0, SAMPLE_SPINS) == SPIN_S
    assert governor.pauses == 0



def _heartbeats_of_lone_runs_amid_load(load_after_run: bool) -> SpinGovernor:
    """Heartbeat intervals in which a loaded stretch (50 ms of run-queue wait, no spin: 64 in flight on 2 cores)
    comes before, or after, a run of ``MIN_SPINS`` quiet spins; the broker restarts the window at both ends of a
    run, as ``Broker._loop`` does."""
    governor, readings = _started()
    spins = 0
    for n in range(2 * CONTESTED_WINDOWS):
        if not load_after_run:
            readings.total += 0.05
        governor.restart_window(spins)  # the run begins
        spins += MIN_SPINS
        readings.total += MIN_SPINS * 5e-6
        if load_after_run:
            governor.restart_window(spins)  # the run ends
            readings.total += 0.05
        assert governor.tick(float(n), spins) == SPIN_S
    assert _window(governor, readings, spins, 5e-6, 10.0) == SPIN_S
    return governor


def test_the_cpu_waits_of_a_loaded_broker_before_a_run_of_lone_requests_do_not_pause_the_spin() -> None:
    assert _heartbeats_of_lone_runs_amid_load(load_after_run=False).pauses == 0


def test_the_cpu_waits_of_a_loaded_broker_after_a_run_of_lone_requests_do_not_pause_the_spin() -> None:
    assert _heartbeats_of_lone_runs_amid_load(load_after_run=True).pauses == 0
