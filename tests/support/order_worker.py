"""A stand-in for the order process in flow tests: serves ``execute.order`` (not idempotent, role trade) and
appends one line per run to ``ORDER_LOG``, taking ``ORDER_MS`` to do it: an order held that long lets a test
kill the scheduler mid-placement and count runs (``test_flows_trade_orders.py`` does the same against the
service's own order process).

Run as ``python -m tests.support.order_worker ENDPOINT WORKER_ID`` with ``IDEMPOTENCY_URL`` set.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from tacore.signals import stop_event_on_signals
from tacore.store.idempotency import IdempotencyStore
from workers.registry import MethodRegistry
from workers.runtime import Worker

registry = MethodRegistry()


class OrderParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    symbol: str
    action: str
    quantity: str
    client_order_id: str


@registry.method("execute.order", role="trade")
def execute_order(params: OrderParams) -> dict[str, Any]:
    """Record the order (one line per run) after ``ORDER_MS``."""
    time.sleep(int(os.environ.get("ORDER_MS", "0")) / 1000.0)
    with open(os.environ["ORDER_LOG"], "a") as log:
        log.write(f"{params.client_order_id} {params.action} {params.quantity} {params.symbol}\n")
    return {"client_order_id": params.client_order_id, "status": "filled", "pid": os.getpid()}


def main() -> None:
    endpoint, worker_id = sys.argv[1], sys.argv[2]
    stop = stop_event_on_signals()
    store = IdempotencyStore(os.environ["IDEMPOTENCY_URL"])
    Worker(endpoint, registry, worker_id=worker_id, kind="test", credit=1, heartbeat_interval_ms=200,
           reconnect_initial_ms=50, reconnect_max_ms=500, idempotency=store).run(stop)


if __name__ == "__main__":
    main()
