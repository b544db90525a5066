"""A trade node against the service's own order process (paper venue): its order is placed once, under the
client_order_id derived from flow/cycle/node, though the scheduler and the pool worker running the node are
killed -9 while the order is on its way, and the node runs again after the restart."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.flows.flow_helpers import TRADER_FLOW, flow_client, tasks_by_node, wait_cycle
from tests.integration.flows.test_flows_restart import pid_of, running_task
from tests.integration.orders.order_support import CandleFeed, call, data, trading_config, wait_for_price
from tests.support.processes import TACoreProcess, wait_until


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TACoreProcess, CandleFeed]]:
    config = trading_config(tmp_path / "trading.yaml")
    proc = TACoreProcess(tmp_path / "svc", ["serve", "--no-data-agent", "--no-api"],
                         env={"TRADING_CONFIG": str(config)}).start()
    feed = CandleFeed(proc.ports["EVENTS_PORT"])
    try:
        proc.wait_healthy(timeout=90, workers=2)
        feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.0)
        wait_for_price(proc, "BTCUSDT")
        yield proc, feed
    finally:
        feed.close()
        proc.stop()


@pytest.mark.timeout(180)
def test_a_trade_nodes_order_reaches_the_order_process_once_across_kill_9_of_scheduler_and_worker(
        service: tuple[TACoreProcess, CandleFeed]) -> None:
    tacore, _ = service
    client = flow_client(tacore)
    orders = pid_of(tacore, kind="orders")
    try:
        os.kill(orders, signal.SIGSTOP)  # the order waits in its process's queue while the node waits for it
        try:
            client.flow_run(TRADER_FLOW)
            number = client.flow_cycle("trader")["cycle"]
            task = wait_until(lambda: running_task(client, "trader", number, "buy"), 30, "the trade node running")
            holder = [w for w in tacore.status()["workers"] if w.get("kind") == "worker" and
                      any(c["request_id"] == task["request_id"] for c in w.get("current", []))]
            scheduler = pid_of(tacore, kind="flow-scheduler")
            os.kill(scheduler, signal.SIGKILL)
            if holder:
                os.kill(int(holder[0]["pid"]), signal.SIGKILL)
        finally:
            os.kill(orders, signal.SIGCONT)  # the first request is placed now, the node's next run asks again
        wait_until(lambda: pid_of(tacore, kind="flow-scheduler") != scheduler, 60, "a new scheduler process")
        cycle = wait_cycle(client, "trader", number, timeout=90)
        assert cycle["status"] == "completed", cycle
        output = tasks_by_node(cycle)["buy"]["output_data"]["output"]
        coid = output["client_order_id"]
        assert output["order"]["client_order_id"] == coid and output["order"]["status"] == "filled"
        listed = data(call(tacore, "order.list", {"account": "paper", "status": "all", "limit": 500}))
        mine = [o for o in listed["orders"] if o["client_order_id"] == coid]
        assert len(mine) == 1, listed  # placed once, whatever ran twice
        fills = data(call(tacore, "fill.list", {"account": "paper"}))
        assert [f["order_id"] for f in fills["fills"]].count(mine[0]["id"]) == 1
    finally:
        client.close()
