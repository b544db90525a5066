"""The dashboard's trading panels: open orders, recent fills, positions with P&L.

The sampler asks the order process every other tick (``order.list`` of the open orders, ``fill.list`` of
the newest fills across all orders, ``portfolio.positions``) as
TACore's own calls, in a task of its own so a slow answer never delays the broker polls; every open page
reads the last answer, so any number of pages costs the order process nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from clients import RemoteError
from tacore.api.errors import ComponentUnavailable

log = logging.getLogger("tacore.api")

OPEN_LIMIT = 50
FILLS_SHOWN = 20
TIMEOUT_MS = 1500.0


class TradingView:
    def __init__(self) -> None:
        self.configured: bool | None = None  # does the broker know the order methods?
        self.up = False
        self.open_orders: list[dict[str, Any]] = []
        self.fills: list[dict[str, Any]] = []
        self.positions: list[dict[str, Any]] = []
        self.updated_at: float | None = None
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def poll_soon(self, link: Any, status: dict[str, Any] | None) -> None:
        """Start a poll unless one still runs; ``status``: the broker's last ``broker.status`` (None: down)."""
        methods = (status or {}).get("methods", {})
        self.configured = None if status is None else "execute.order" in methods
        self.up = int(methods.get("execute.order", {}).get("workers", 0)) > 0
        if not self.up or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.create_task(self._poll(link), name="tacore-api-trading")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self, link: Any) -> None:
        try:
            opened, recent, held = await asyncio.gather(
                link.call("order.list", {"status": "open", "limit": OPEN_LIMIT}, timeout_ms=TIMEOUT_MS, priority=9),
                link.call("fill.list", {"limit": FILLS_SHOWN}, timeout_ms=TIMEOUT_MS, priority=9),
                link.call("portfolio.positions", {}, timeout_ms=TIMEOUT_MS, priority=9))
        except (ComponentUnavailable, RemoteError) as exc:
            self.error = str(exc)
            return
        except Exception:  # a bug here must not end the polling
            log.exception("trading panels: poll failed")
            return
        self.open_orders = list(opened.get("orders", []))
        self.fills = list(recent.get("fills", []))
        self.positions = list(held.get("positions", []))
        self.updated_at, self.error = time.time(), None

    def view(self) -> dict[str, Any]:
        return {"configured": self.configured, "up": self.up, "updated_at": self.updated_at, "error": self.error,
                "open_orders": self.open_orders, "fills": self.fills, "positions": self.positions}

