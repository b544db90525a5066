"""Keep each call's params (secrets redacted) and its error message in the request log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

So an order (or any call) can be traced from ``/logs`` to the call that made it. Rows written before
this revision have neither (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        batch.add_column(sa.Column("params", sa.Text, nullable=True))
        batch.add_column(sa.Column("error_message", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("error_message")
        batch.drop_column("params")
