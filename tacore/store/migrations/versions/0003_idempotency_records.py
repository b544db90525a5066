"""Durable idempotency records: a non-idempotent request runs at most once per request_id (tacore/store/idempotency.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

In the service's database when that is a server (DATABASE_URL) and IDEMPOTENCY_URL is unset; with the
default SQLite request log the records live in a file of their own, whose store creates this same table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import LONGBLOB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column("request_id", sa.String(256), primary_key=True),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("claimed_at", sa.Double, nullable=False),
        sa.Column("lease_until", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.Column("ok", sa.Boolean, nullable=True),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("reply", sa.LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb"), nullable=True),
    )
    op.create_index("ix_idempotency_records_claimed_at", "idempotency_records", ["claimed_at"])


def downgrade() -> None:
    op.drop_table("idempotency_records")
