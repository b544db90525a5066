"""The flow engine's history: flows, flow_cycles, tasks, task_logs (tacore/flows/tables.py, docs/flows.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

``tasks`` and ``task_logs`` carry the Tradefree document's columns; a cycle is unique per (flow, cycle
number) and per (flow, trigger key), so no scheduled time ever makes two cycles.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("flow_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("next_cycle", sa.Integer, nullable=False),
        sa.Column("next_run_at", sa.Float, nullable=True),
        sa.Column("last_tick", sa.Float, nullable=True),
        sa.Column("missed_total", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "flow_cycles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow_id", sa.String(128), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("trigger_key", sa.String(160), nullable=False),
        sa.Column("scheduled_at", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("event", sa.JSON, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("flow_id", "cycle", name="uq_flow_cycles_flow_cycle"),
        sa.UniqueConstraint("flow_id", "trigger_key", name="uq_flow_cycles_flow_trigger"),
    )
    op.create_index("ix_flow_cycles_status", "flow_cycles", ["status"])
    op.create_index("ix_flow_cycles_created_at", "flow_cycles", ["created_at"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("input_data", sa.JSON, nullable=True),
        sa.Column("output_data", sa.JSON, nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("flow_id", sa.String(128), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("component_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("preemptions", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(256), nullable=True),
        sa.Column("timeout_ms", sa.Integer, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("queued_at", sa.Float, nullable=True),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.UniqueConstraint("flow_id", "cycle", "node_id", name="uq_tasks_flow_cycle_node"),
    )
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_index("ix_tasks_created_at", "tasks", ["created_at"])
    op.create_index("ix_tasks_node", "tasks", ["node_id", "created_at"])
    op.create_table(
        "task_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_task_logs_task_id", "task_logs", ["task_id"])
    op.create_index("ix_task_logs_created_at", "task_logs", ["created_at"])


def downgrade() -> None:
    for table in ("task_logs", "tasks", "flow_cycles", "flows"):
        op.drop_table(table)
