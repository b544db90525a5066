from __future__ import annotations

from tacore.restarts import RestartBackoff


def test_a_process_that_keeps_dying_at_start_waits_twice_as_long_each_time_up_to_a_minute() -> None:
    backoff = RestartBackoff()
    delays = [backoff.exited(1, ran_s=0.5, now=100.0) for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff.failures_in_row == 9 and backoff.last_exit_code == 1
    assert not backoff.due(159.0) and backoff.due(160.0)
    wire = backoff.to_wire(150.0)
    assert wire["running"] is False and wire["next_start_in_s"] == 10.0 and wire["failures_in_row"] == 9


def test_a_process_that_ran_well_is_restarted_at_once_and_its_count_starts_over() -> None:
    backoff = RestartBackoff()
    backoff.exited(1, ran_s=1.0, now=0.0)
    backoff.exited(1, ran_s=1.0, now=10.0)
    assert backoff.exited(-9, ran_s=3600.0, now=20.0) == 0.0
    assert backoff.failures_in_row == 0 and backoff.restarts == 3 and backoff.due(20.0)
    backoff.started()
    assert backoff.to_wire(21.0)["running"] is True and not backoff.due(21.0)
    assert backoff.exited(1, ran_s=1.0, now=30.0) == 0.5  # a new run of failures starts from the beginning
