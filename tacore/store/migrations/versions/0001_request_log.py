"""The request log as it was before Alembic: one row per answered request.

Revision ID: 0001
Revises:
Create Date: 2026-12-03

A database created by the earlier ``metadata.create_all`` already has exactly this; ``upgrade_schema``
stamps such a database at this revision instead of running it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(256), nullable=True),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("worker_id", sa.String(128), nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("queue_ms", sa.Float, nullable=False),
        sa.Column("processing_ms", sa.Float, nullable=False),
        sa.Column("total_ms", sa.Float, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=False),
    )
    op.create_index("ix_request_log_received_at", "request_log", ["received_at"])
    op.create_index("ix_request_log_request_id", "request_log", ["request_id"])
    op.create_index("ix_request_log_method_received", "request_log", ["method", "received_at"])
    op.create_index("ix_request_log_error_code", "request_log", ["error_code"])


def downgrade() -> None:
    op.drop_table("request_log")
