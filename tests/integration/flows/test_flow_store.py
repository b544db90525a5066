"""The flow history on SQLite and PostgreSQL: the migration makes the tables the store uses, the core's
state round-trips through a restart, a scheduled time can make only one cycle, and a cycle whose definition
lost nodes while it ran ends on restart (as a retry of it is refused)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tacore.errors import InvalidParams
from tacore.flows.core import Core
from tacore.flows.engine import FlowEngine
from tacore.flows.model import parse_flow
from tacore.flows.nodes import node_type
from tacore.flows.store import FlowStore
from tacore.flows.tables import metadata
from tacore.store.migrate import upgrade_schema
from tacore.store.request_log import make_engine

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'tacore.db'}")
        upgrade_schema(eng)
        yield eng
        eng.dispose()
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"tacore_flows_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = make_engine(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}")
    try:
        upgrade_schema(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


SPEC = parse_flow({"flow_id": "f", "cycle_interval": "1m", "flow_json": {"nodes": [
    {"id": "a", "type": "action_node", "config": {"action": "noop"}},
    {"id": "b", "type": "action_node", "config": {"action": "noop"}}], "edges": [{"source": "a", "target": "b"}]}},
    node_type)


def test_the_migration_makes_exactly_the_tables_the_store_uses(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diff if not (d[0] == "remove_table" or (d[0] == "remove_index" and d[1].table.name not in
                                                                   metadata.tables))]
    assert ours == []


def test_a_cycle_in_progress_comes_back_after_a_restart(engine: Engine) -> None:
    core, store = Core(4), FlowStore(engine)
    core.register(SPEC, 0.0)
    core.due(60.0)
    actions = core.schedule(60.0)
    assert store.flush(core, 60.0) == []
    running = actions[0].task
    core.logs.append((running.id, "INFO", "hello", 60.0))
    store.flush(core, 60.0)

    again, store2 = Core(4), FlowStore(engine)  # a new scheduler process
    row = store2.load_flows()[0]
    again.register(parse_flow(row["definition"], node_type), 61.0)
    again.flows["f"].next_cycle = row["next_cycle"]
    cycles = store2.open_cycles()
    assert [(c.cycle, c.status) for c in cycles] == [(0, "running")]
    resent = again.restore_cycle(cycles[0], 61.0)
    assert [(a.resend, a.task.request_id) for a in resent] == [(True, running.request_id)]
    assert store2.log_rows("f", 0, None, None, 0, 10)[0]["message"] == "hello"


def test_a_scheduled_time_is_refused_a_second_cycle(engine: Engine) -> None:
    first, second = Core(4), Core(4)  # two schedulers racing on one database
    store_a, store_b = FlowStore(engine), FlowStore(engine)
    for core in (first, second):
        core.register(SPEC, 0.0)
        core.due(60.0)
    assert store_a.flush(first, 60.0) == []
    refused = store_b.flush(second, 60.0)
    assert [(c.flow_id, c.cycle) for c in refused] == [("f", 0)]
    assert store_a.cycle_counts("f") == {"running": 1}
    assert [t["node_id"] for t in store_a.task_rows("f", 0)] == ["a"]  # b, pending, is written when it changes


def test_a_cycle_whose_nodes_left_the_definition_ends_on_restart_saying_which(engine: Engine) -> None:
    core, store = Core(4), FlowStore(engine)
    core.register(SPEC, 0.0)  # a -> b
    core.due(60.0)
    [first] = core.schedule(60.0)
    core.on_reply(first.task.request_id or "", {"status": "success", "data": {"outputs": {"output": 1}}}, 60.1)
    [second] = core.schedule(60.1)
    assert second.task.node_id == "b"
    store.flush(core, 60.1)
    # flow.run replaces the definition while the cycle runs (b is gone), then the scheduler is killed
    core.register(parse_flow({"flow_id": "f", "cycle_interval": "1m", "flow_json": {"nodes": [
        {"id": "a", "type": "action_node", "config": {"action": "noop"}}], "edges": []}}, node_type), 61.0)
    store.flush(core, 61.0)

    restarted = FlowEngine(FlowStore(engine), Core(4), clock=lambda: 62.0)
    assert restarted.restore() == []  # b is not asked again on a definition that no longer has it
    [row] = restarted.store.cycle_rows("f", 10)
    assert row["status"] == "cancelled" and "its nodes b are no longer in it" in row["error"]
    tasks = {t["node_id"]: t for t in restarted.store.task_rows("f", 0)}
    assert tasks["a"]["status"] == "completed" and tasks["a"]["output_data"] == {"output": 1}
    assert tasks["b"]["status"] == "cancelled"
    assert restarted.core.flows["f"].next_run_at is not None and not restarted.core.cycles  # schedules go on
    with pytest.raises(InvalidParams, match="nodes no longer in the definition: b"):
        restarted.retry("f", 0)  # the retry is refused the same way
    restarted.store.close()


def test_a_write_behind_handed_to_the_writing_thread_is_read_back_once_waited_for(engine: Engine) -> None:
    core, store = Core(4), FlowStore(engine)
    core.register(SPEC, 0.0)
    core.due(60.0)
    [first] = core.schedule(60.0)
    assert store.flush(core, 60.0, tasks_too=False, wait=False) == []  # the new cycle: written before it returns
    assert store.cycle_counts("f") == {"running": 1}
    core.on_reply(first.task.request_id or "", {"status": "success", "data": {"outputs": {"output": 7}}}, 60.1)
    store.flush(core, 60.1, wait=False)  # the loop's write-behind: handed over, the loop goes on
    store.wait()
    assert {t["node_id"]: t["output_data"] for t in store.task_rows("f", 0)}["a"] == {"output": 7}
    store.close()


def test_a_cycle_in_progress_is_read_from_the_core_and_an_ended_one_from_the_store(engine: Engine) -> None:
    clock = [100.0]
    flows = FlowEngine(FlowStore(engine), Core(4), clock=lambda: clock[0])
    flows.run({"flow_id": "f", "flow_json": {"nodes": [
        {"id": "a", "type": "action_node", "config": {"action": "noop"}},
        {"id": "b", "type": "action_node", "config": {"action": "noop"}}], "edges": [{"source": "a", "target": "b"}]}})
    flows.trigger("f", None, "r1")  # the cycle before its request; its first task's row handed over
    [a] = flows.step([], [])
    flows.store.wait()
    ok = {"status": "success", "data": {"outputs": {"output": 1}}}
    clock[0] = 100.001
    [b] = flows.step([(a.task.request_id or "", ok)], [])  # a's end: written behind, not yet due
    live = flows.cycle("f", 0)
    assert {t["node_id"]: t["status"] for t in live["tasks"]} == {"a": "completed", "b": "running"}
    assert live["status"] == "running" and live["tasks"][0]["output_data"] == {"output": 1}
    assert {t["node_id"]: t["status"] for t in flows.store.task_rows("f", 0)} == {"a": "running"}  # no write forced
    clock[0] = 100.002
    flows.step([(b.task.request_id or "", ok)], [])  # the cycle ends: the core lets go of it
    ended = flows.cycle("f", 0)  # from the store, once what the core changed is written
    assert ended["status"] == "completed"
    assert {t["node_id"]: t["status"] for t in ended["tasks"]} == {"a": "completed", "b": "completed"}
    flows.store.close()


def test_a_manual_cycle_under_the_number_of_an_ended_one_is_refused_not_answered_as_running(
        engine: Engine) -> None:
    clock = [100.0]
    flows = FlowEngine(FlowStore(engine), Core(4), clock=lambda: clock[0])
    flows.run({"flow_id": "f", "flow_json": {"nodes": [
        {"id": "a", "type": "action_node", "config": {"action": "noop"}}], "edges": []}})
    assert flows.trigger("f", 5, "r1")["cycle"] == 5
    with pytest.raises(InvalidParams, match="exists already"):  # still running: the core holds it
        flows.trigger("f", 5, "r2")
    [a] = flows.step([], [])
    clock[0] = 100.001
    flows.step([(a.task.request_id or "", {"status": "success", "data": {"outputs": {"output": 1}}})], [])
    assert flows.cycle("f", 5)["status"] == "completed"  # ended: the core let go of it, the store has it
    with pytest.raises(InvalidParams, match="exists already"):
        flows.trigger("f", 5, "r3")
    assert flows.step([], []) == []  # nothing of the refused one is sent
    assert flows.cycle("f", 5)["status"] == "completed"
    assert flows.trigger("f", 6, "r4")["cycle"] == 6  # the flow goes on
    flows.store.close()


def test_an_ended_cycle_is_written_with_its_tasks_never_before_them(engine: Engine) -> None:
    core, store = Core(4), FlowStore(engine)
    core.register(SPEC, 0.0)
    core.due(60.0)
    [a] = core.schedule(60.0)
    store.flush(core, 60.0)
    ok = {"status": "success", "data": {"outputs": {"output": 1}}}
    core.on_reply(a.task.request_id or "", ok, 60.1)
    [b] = core.schedule(60.1)
    core.on_reply(b.task.request_id or "", ok, 60.2)  # cycle 0 ends
    core.due(120.0)  # and the next tick's cycle starts in the same loop turn
    store.flush(core, 120.0, tasks_too=False)  # the new cycle, before its first request
    assert {r["cycle"]: r["status"] for r in store.cycle_rows("f", 10)} == {0: "running", 1: "running"}
    store.flush(core, 120.0)  # the write-behind: cycle 0's end together with its tasks
    assert {r["cycle"]: r["status"] for r in store.cycle_rows("f", 10)} == {0: "completed", 1: "running"}
    assert {t["status"] for t in store.task_rows("f", 0)} == {"completed"}
    store.close()


def test_a_late_reply_to_a_stopped_cycles_node_is_written_as_an_update(engine: Engine) -> None:
    core, store = Core(4), FlowStore(engine)
    core.register(SPEC, 0.0)
    core.due(60.0)
    [a] = core.schedule(60.0)
    store.flush(core, 60.0)
    core.stop_cycle("f", 0, None, 60.1, "stopped")  # the cycle ends while a runs on a worker
    store.flush(core, 60.1)  # written; the store forgets an ended cycle's tasks (its memory stays bounded)
    ok = {"status": "success", "data": {"outputs": {"output": 1}}}
    core.on_reply(a.task.request_id or "", ok, 60.2)  # the worker's reply comes in after all
    core.logs.append((a.task.id, "INFO", "late", 60.2))
    store.flush(core, 60.2)  # nothing is written twice for a task of a cycle the store has let go of
    rows = {t["node_id"]: t for t in store.task_rows("f", 0)}
    assert len(rows) == 2 and rows["a"]["id"] == a.task.id
    assert store.cycle_rows("f", 10)[0]["status"] == "cancelled"
    store.close()
