"""Mark the service's own traffic in the request log (the sidecar's polling, the scheduler's calls).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

Existing rows were all counted as user traffic, so they keep that meaning (``internal`` false).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        batch.add_column(sa.Column("internal", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.create_index("ix_request_log_internal_received", ["internal", "received_at"])


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        batch.drop_index("ix_request_log_internal_received")
        batch.drop_column("internal")
