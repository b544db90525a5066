"""The rules of ``tacore.health.assess``: one state per dependency from the broker's view and the reports."""

from __future__ import annotations

from typing import Any

from tacore.health import (
    DEPENDENCIES,
    Observations,
    Report,
    assess,
    data_plane_status,
    is_disk_error,
    serving_possible,
    worst,
)

NOW = 1_000_000.0
GIB = 1 << 30


def agent_facts(**overrides: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "candle_store": {"kind": "chdb", "ok": True, "buffered_rows": 0, "dropped_rows": 0},
        "cache": {"kind": "redis", "ok": True},
        "disk": {"path": "/data", "free_bytes": 50 * GIB, "total_bytes": 100 * GIB, "read_only": False},
        "feed": {"connections": 2, "connected": 2},
    }
    facts.update(overrides)
    return facts


def recorder_facts(**overrides: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"database": {"kind": "sqlite", "ok": True}, "written": 10, "buffered": 0,
                             "buffer_limit": 1000, "dropped": 0, "last_drop_at": None, "write_failures": 0}
    facts.update(overrides)
    return facts


def observe(*reports: Report, **fields: Any) -> Observations:
    base: dict[str, Any] = {"now": NOW, "stale_after_s": 5.0, "pool_workers": 2, "data_agent_expected": True,
                            "data_agents": ["data-agent-1"], "ships_records": True, "reports": list(reports)}
    base.update(fields)
    return Observations(**base)


def fresh(source: str, facts: dict[str, Any], age_s: float = 0.5) -> Report:
    return Report(source, NOW - age_s, facts)


def test_everything_reported_well_is_up_in_the_fixed_order() -> None:
    states = assess(observe(fresh("recorder", recorder_facts()), fresh("data-agent/1", agent_facts())))
    assert list(states) == list(DEPENDENCIES)
    assert {name: s["status"] for name, s in states.items()} == dict.fromkeys(DEPENDENCIES, "up")
    assert all(s["reason"] for s in states.values())
    assert worst(states.values()) == "up" and serving_possible(states) and data_plane_status(states) == "ok"


def test_a_redis_failure_reported_by_the_data_agent_is_the_cache_down_with_its_error() -> None:
    facts = agent_facts(cache={"kind": "redis", "ok": False, "error": "ConnectionError: refused", "since": NOW - 3})
    states = assess(observe(fresh("recorder", recorder_facts()), fresh("data-agent/1", facts)))
    assert states["cache"]["status"] == "down" and "refused" in states["cache"]["reason"]
    assert worst(states.values()) == "down" and serving_possible(states)  # degraded service, still serving
    assert data_plane_status(states) == "degraded"


def test_disk_rules_read_only_full_failed_write_and_low_space() -> None:
    def disk(**facts: Any) -> dict[str, Any]:
        merged = {"path": "/data", "free_bytes": 50 * GIB, "total_bytes": 100 * GIB, **facts}
        return assess(observe(fresh("data-agent/1", agent_facts(disk=merged))))["disk"]

    assert disk(read_only=True)["status"] == "down"
    assert disk(free_bytes=1000)["status"] == "down" and "full" in disk(free_bytes=1000)["reason"]
    failed = disk(write_error="No space left on device", write_error_at=NOW - 10)
    assert failed["status"] == "down" and "No space left" in failed["reason"]
    assert disk(write_error="No space left on device", write_error_at=NOW - 3600)["status"] == "up"  # long ago
    assert disk(free_bytes=GIB // 2)["status"] == "degraded"  # below DATA_DIR_MIN_FREE_MB (1 GiB)
    assert disk(error="PermissionError: denied")["status"] == "down"


def test_drops_keep_the_recorder_degraded_and_a_missing_recorder_is_down_unless_its_process_runs() -> None:
    dropped = recorder_facts(dropped=500, last_drop_at=NOW - 20)
    states = assess(observe(fresh("recorder", dropped)))
    assert states["recorder"]["status"] == "degraded" and states["recorder"]["reason"].startswith("500 request")
    broker_drops = assess(observe(fresh("recorder", recorder_facts()), shipper_dropped=7,
                                  shipper_last_drop_at=NOW - 1))
    assert broker_drops["recorder"]["dropped"] == 7 and broker_drops["recorder"]["status"] == "degraded"
    silent = assess(observe(fresh("recorder", recorder_facts(), age_s=60)))
    assert silent["recorder"]["status"] == "down" and "silent for 60 s" in silent["recorder"]["reason"]
    assert silent["database"]["status"] == "degraded" and silent["database"]["reason"].startswith("unknown")
    supervisor = fresh("supervisor", {"components": {"recorder": {"running": True, "failures_in_row": 0}}})
    starved = assess(observe(fresh("recorder", recorder_facts(), age_s=60), supervisor))
    assert starved["recorder"]["status"] == "degraded"


def test_a_database_that_fails_is_down_and_held_records_degrade_the_recorder() -> None:
    facts = recorder_facts(database={"kind": "postgresql", "ok": False, "error": "OperationalError: refused"},
                           buffered=300)
    states = assess(observe(fresh("recorder", facts)))
    assert states["database"] == {"status": "down", "reason": "OperationalError: refused", "since": None,
                                  "kind": "postgresql"}
    assert states["recorder"]["status"] == "degraded" and "holding 300" in states["recorder"]["reason"]


def test_a_data_agent_that_keeps_dying_is_down_with_the_supervisors_account_and_its_last_words() -> None:
    supervisor = fresh("supervisor", {"components": {"data-agent": {
        "running": False, "failures_in_row": 4, "last_exit_code": 73, "next_start_in_s": 8.0}}})
    last_words = Report("data-agent/1", NOW - 30, {"fatal": "DATA_DIR /data is not usable: Read-only file system"})
    states = assess(observe(supervisor, last_words, data_agents=[]))
    reason = states["data_agent"]["reason"]
    assert states["data_agent"]["status"] == "down"
    assert "exited 4 time(s) in a row (last exit code 73)" in reason and "in 8 s (backing off)" in reason
    assert "last words: DATA_DIR /data is not usable" in reason
    assert states["candle_store"]["status"] == "down"  # only the agent opens the embedded store


def test_candles_ahead_of_the_exchanges_clock_degrade_the_data_agent_and_its_store_clock_is_shown() -> None:
    ok = {"state": "ok", "ahead_candles": 0, "moved_aside": {"candles": 12}}
    state = assess(observe(fresh("data-agent/1", agent_facts(store_clock=ok))))["data_agent"]
    assert state["status"] == "up" and state["store_clock"]["moved_aside"] == {"candles": 12}
    ahead = {"state": "ahead", "ahead_candles": 7, "moved_aside": None}
    state = assess(observe(fresh("data-agent/1", agent_facts(store_clock=ahead))))["data_agent"]
    assert state["status"] == "degraded" and "7 candle(s) ahead" in state["reason"]
    assert state["store_clock"]["state"] == "ahead"


def test_no_workers_means_serving_is_impossible() -> None:
    states = assess(observe(pool_workers=0))
    assert states["workers"]["status"] == "down" and not serving_possible(states)


def test_without_a_data_agent_or_a_request_log_those_parts_are_not_configured() -> None:
    states = assess(observe(data_agent_expected=False, data_agents=[], ships_records=False))
    for name in ("data_agent", "recorder", "database", "cache", "candle_store", "disk"):
        assert states[name]["status"] == "not_configured", name
    assert worst(states.values()) == "up"


def test_disk_errors_are_recognised_by_errno_or_by_the_systems_words() -> None:
    assert is_disk_error(OSError(28, "No space left on device"))
    assert is_disk_error("chdb store: Code: 243. Cannot reserve 1.00 MiB: No space left on device")
    assert is_disk_error("[Errno 30] Read-only file system: '/data'")
    assert not is_disk_error(OSError(2, "No such file or directory"))


def test_a_data_agent_restarted_under_the_same_id_is_assessed_from_its_own_reports_not_its_predecessors() -> None:
    dead = Report("data-agent/data-agent-1", NOW - 2.0, agent_facts(cache={"kind": "redis", "ok": False,
                                                                        "error": "ConnectionError: refused"}))
    restarted = {"data_agents_since": {"data-agent-1": NOW - 1.0}}
    states = assess(observe(dead, **restarted))
    assert states["data_agent"]["status"] == "degraded" and "not reported" in states["data_agent"]["reason"]
    assert states["cache"]["status"] != "down"  # the dead agent's Redis error is not the new one's
    own = Report("data-agent/data-agent-1", NOW - 0.5, agent_facts())
    states = assess(observe(dead, own, **restarted))
    assert states["data_agent"]["status"] == "up" and states["cache"]["status"] == "up"
    # before the restart the same report is the agent's own, and counts
    assert assess(observe(dead, data_agents_since={"data-agent-1": NOW - 60}))["cache"]["status"] == "down"
