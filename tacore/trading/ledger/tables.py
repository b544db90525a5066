"""The ledger's tables (SQLAlchemy Core): ``orders``, ``order_events``, ``fills``, ``positions``,
``balances`` and ``candle_marks``. Money is exact: ``Numeric(38, 10)`` on servers, canonical text on
SQLite (whose NUMERIC would turn it into a float). The schema is made by the Alembic migrations under
``migrations/`` (a test holds these definitions equal to what they produce).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from tacore.trading.model.money import fmt, to_decimal

metadata = MetaData()


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored exactly: NUMERIC(38, 10) where the database has it, text on SQLite."""

    impl = Numeric(38, 10)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(38, 10, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = to_decimal(value)
        return fmt(number) if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


def _money(name: str, nullable: bool = False) -> Column[Decimal]:
    return Column(name, ExactDecimal(), nullable=nullable)


#: BIGINT autoincrement keys (SQLite only autoincrements an INTEGER PRIMARY KEY)
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")

orders = Table(
    "orders", metadata,
    Column("id", String(36), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("client_order_id", String(64), nullable=False),
    Column("request_id", String(256), nullable=True),
    Column("payload_hash", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("venue_order_id", String(64), nullable=True),
    Column("symbol", String(32), nullable=False),
    Column("asset_class", String(16), nullable=False),
    Column("quote_asset", String(16), nullable=False),
    Column("side", String(8), nullable=False),
    Column("type", String(16), nullable=False),
    Column("time_in_force", String(8), nullable=False),
    _money("qty"),
    _money("limit_price", nullable=True),
    _money("stop_price", nullable=True),
    Column("status", String(24), nullable=False),
    _money("filled_qty"),
    _money("filled_notional"),
    _money("filled_avg_price", nullable=True),
    _money("fees"),
    _money("reserved"),
    Column("triggered", Boolean, nullable=False),
    Column("reason", String(512), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("submitted_ms", BigInteger, nullable=True),
    Column("filled_ms", BigInteger, nullable=True),
    Column("canceled_ms", BigInteger, nullable=True),
    Column("expired_ms", BigInteger, nullable=True),
    Column("rejected_ms", BigInteger, nullable=True),
    Column("expires_ms", BigInteger, nullable=True),
    Column("market_ms", BigInteger, nullable=False),
    Column("event_seq", Integer, nullable=False),
    # the claim of a client order id: one order per id and account, whatever retries come
    UniqueConstraint("account", "client_order_id", name="uq_orders_account_client_order_id"),
    Index("ix_orders_status", "status"),
    Index("ix_orders_account_created", "account", "created_ms"),
    Index("ix_orders_symbol_created", "symbol", "created_ms"),
)

order_events = Table(
    "order_events", metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("order_id", String(36), ForeignKey("orders.id", name="fk_order_events_order"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("status", String(24), nullable=False),
    _money("filled_qty"),
    Column("ts_ms", BigInteger, nullable=False),
    Column("detail", Text, nullable=True),  # JSON: the reason, the fill
    UniqueConstraint("order_id", "seq", name="uq_order_events_order_seq"),
)

fills = Table(
    "fills", metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), ForeignKey("orders.id", name="fk_fills_order"), nullable=False),
    Column("venue_fill_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    _money("qty"),
    _money("price"),
    _money("fee"),
    Column("fee_asset", String(16), nullable=False),
    Column("liquidity", String(8), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    UniqueConstraint("order_id", "venue_fill_id", name="uq_fills_order_venue_fill"),
    Index("ix_fills_account_ts", "account", "ts_ms"),
)

positions = Table(
    "positions", metadata,
    Column("account", String(64), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("quote_asset", String(16), nullable=False),
    _money("qty"),
    _money("cost_basis"),
    _money("realized_pnl"),
    _money("fees"),
    _money("reserved_qty"),
    Column("updated_ms", BigInteger, nullable=False),
)

balances = Table(
    "balances", metadata,
    Column("account", String(64), primary_key=True),
    Column("asset", String(16), primary_key=True),
    _money("total"),
    _money("reserved"),
    _money("deposited"),
    Column("updated_ms", BigInteger, nullable=False),
)

#: The newest 1m candle the paper venue has evaluated, per symbol: after a restart it catches up from here.
candle_marks = Table(
    "candle_marks", metadata,
    Column("symbol", String(32), primary_key=True),
    Column("open_ms", BigInteger, nullable=False),
)
