"""The order engine: intent -> venue -> record, for every account, as the ledger's single writer.

One idea per module, composed into ``OrderEngine``:

- ``state``: what the engine holds, loading it, the commit barrier (changes are staged and made durable
  by ``commit``, which the worker runtime calls before it sends a batch's replies; a failed commit
  reloads the state and fails the next ``commit`` too, so no reply promises a lost effect), the lock,
  and running remote venue calls outside it;
- ``applying``: bringing an order and the portfolio to what its venue reports;
- ``placing``: placing (one order per client order id, the intent durable before a remote venue hears
  of it) and canceling;
- ``clock``: candles, expiries, orders in doubt and polls of remote venues;
- ``reads``: orders, fills, positions, balances.
"""

from __future__ import annotations

from tacore.trading.engine.clock import CANDLE_INTERVAL, MarketClock
from tacore.trading.engine.placing import Placed
from tacore.trading.engine.reads import Reads
from tacore.trading.engine.state import REMOTE_POLL_MS, Prices


class OrderEngine(MarketClock, Reads):
    """The order process's engine (see the package's docstring)."""


__all__ = ["CANDLE_INTERVAL", "REMOTE_POLL_MS", "OrderEngine", "Placed", "Prices"]
