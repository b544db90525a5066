"""The flow engine's durable history as tables (SQLAlchemy Core): ``flows``, ``flow_cycles``, ``tasks`` (the
Tradefree document's columns plus flow, cycle, node, component, attempt, worker, priority, timings) and
``task_logs``. Created by the Alembic migration 0004 (``tacore/store/migrations``); ``metadata`` is what the
migration tests compare it with.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

flows = Table(
    "flows", metadata,
    Column("flow_id", String(128), primary_key=True),
    Column("name", String(256), nullable=True),
    Column("status", String(16), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("next_cycle", Integer, nullable=False),
    Column("next_run_at", Float, nullable=True),
    Column("last_tick", Float, nullable=True),
    Column("missed_total", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

flow_cycles = Table(
    "flow_cycles", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_id", String(128), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("trigger_key", String(160), nullable=False),
    Column("scheduled_at", Float, nullable=True),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("event", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("flow_id", "cycle", name="uq_flow_cycles_flow_cycle"),
    UniqueConstraint("flow_id", "trigger_key", name="uq_flow_cycles_flow_trigger"),
    Index("ix_flow_cycles_status", "status"),
    Index("ix_flow_cycles_created_at", "created_at"),
)

tasks = Table(
    "tasks", metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("input_data", JSON, nullable=True),
    Column("output_data", JSON, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("flow_id", String(128), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("node_id", String(128), nullable=False),
    Column("component_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("preemptions", Integer, nullable=False),
    Column("worker", String(128), nullable=True),
    Column("priority", Integer, nullable=False),
    Column("request_id", String(256), nullable=True),
    Column("timeout_ms", Integer, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("queued_at", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    UniqueConstraint("flow_id", "cycle", "node_id", name="uq_tasks_flow_cycle_node"),
    Index("ix_tasks_status", "status"),
    Index("ix_tasks_created_at", "created_at"),
    Index("ix_tasks_node", "node_id", "created_at"),
)

task_logs = Table(
    "task_logs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(36), nullable=False),
    Column("level", String(20), nullable=False),
    Column("message", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_task_logs_task_id", "task_id"),
    Index("ix_task_logs_created_at", "created_at"),
)
