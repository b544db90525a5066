"""The order ledger: orders, their events and fills, positions and balances in SQL, exact and durable."""

from __future__ import annotations

from tacore.trading.ledger.schema import ledger_url, make_ledger_engine, upgrade_ledger
from tacore.trading.ledger.store import Ledger, LedgerUnavailable, OrderQuery

__all__ = ["Ledger", "LedgerUnavailable", "OrderQuery", "ledger_url", "make_ledger_engine", "upgrade_ledger"]
