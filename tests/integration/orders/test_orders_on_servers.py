"""The order process with the service's database on PostgreSQL and on MariaDB (DATABASE_URL): the ledger,
the idempotency records and the request log live there; an order survives a restart and its retry
answers it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from order_support import CandleFeed, call, data, wait_for_price

from tests.support.processes import TACoreProcess, wait_until
from tests.support.sql_servers import server_database


@pytest.fixture(params=["postgresql", "mysql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from server_database(request.param)


@pytest.mark.postgres
def test_orders_on_a_server_database_survive_a_restart(
        order_service: Callable[..., tuple[TACoreProcess, CandleFeed]], database_url: str) -> None:
    tacore, feed = order_service(DATABASE_URL=database_url)
    feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.0)
    wait_for_price(tacore, "BTCUSDT")
    params = {"symbol": "BTCUSDT", "action": "buy", "quantity": "1.5", "order_type": "limit", "price": "90",
              "time_in_force": "gtc"}
    placed = data(call(tacore, "execute.order", params, request_id="server-1"))
    assert placed["status"] == "new"
    assert not (tacore.workdir / "data" / "orders.db").exists()  # the ledger is on the server
    tacore.stop()
    tacore.start()
    tacore.wait_healthy(workers=2, timeout=60)
    wait_for_price(tacore, "BTCUSDT")
    assert data(call(tacore, "execute.order", params, request_id="server-1"))["id"] == placed["id"]
    feed.candle("BTCUSDT", 95.0, 96.0, 89.0, 91.0, open_ms=feed.next_minute())
    wait_until(lambda: data(call(tacore, "order.get", {"order_id": placed["id"]}))["status"] == "filled", 15,
               "the resting limit filled after the restart")
    balances = data(call(tacore, "account.balances", {"account": "paper"}))["balances"]
    assert balances[0]["reserved"] == "0"
