"""The order ledger: orders, their events and fills, positions, balances, the paper venue's candle marks.

Revision ID: l0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "l0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(38, 10).with_variant(sa.String(48), "sqlite")  # exact: text on SQLite
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _money(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, MONEY, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(256), nullable=True),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("venue_order_id", sa.String(64), nullable=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("asset_class", sa.String(16), nullable=False),
        sa.Column("quote_asset", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        _money("qty"),
        _money("limit_price", nullable=True),
        _money("stop_price", nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        _money("filled_qty"),
        _money("filled_notional"),
        _money("filled_avg_price", nullable=True),
        _money("fees"),
        _money("reserved"),
        sa.Column("triggered", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(512), nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("submitted_ms", sa.BigInteger, nullable=True),
        sa.Column("filled_ms", sa.BigInteger, nullable=True),
        sa.Column("canceled_ms", sa.BigInteger, nullable=True),
        sa.Column("expired_ms", sa.BigInteger, nullable=True),
        sa.Column("rejected_ms", sa.BigInteger, nullable=True),
        sa.Column("expires_ms", sa.BigInteger, nullable=True),
        sa.Column("market_ms", sa.BigInteger, nullable=False),
        sa.Column("event_seq", sa.Integer, nullable=False),
        sa.UniqueConstraint("account", "client_order_id", name="uq_orders_account_client_order_id"),
    )
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_account_created", "orders", ["account", "created_ms"])
    op.create_index("ix_orders_symbol_created", "orders", ["symbol", "created_ms"])
    op.create_table(
        "order_events",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id", name="fk_order_events_order"),
                  nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        _money("filled_qty"),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.UniqueConstraint("order_id", "seq", name="uq_order_events_order_seq"),
    )
    op.create_table(
        "fills",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id", name="fk_fills_order"), nullable=False),
        sa.Column("venue_fill_id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        _money("qty"),
        _money("price"),
        _money("fee"),
        sa.Column("fee_asset", sa.String(16), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("order_id", "venue_fill_id", name="uq_fills_order_venue_fill"),
    )
    op.create_index("ix_fills_account_ts", "fills", ["account", "ts_ms"])
    op.create_table(
        "positions",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("quote_asset", sa.String(16), nullable=False),
        _money("qty"),
        _money("cost_basis"),
        _money("realized_pnl"),
        _money("fees"),
        _money("reserved_qty"),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "balances",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("asset", sa.String(16), primary_key=True),
        _money("total"),
        _money("reserved"),
        _money("deposited"),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "candle_marks",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("open_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("candle_marks", "balances", "positions", "fills", "order_events", "orders"):
        op.drop_table(table)
