"""kill -9 of the flow scheduler, and of a pool worker, in the middle of a cycle: the cycle goes on, finished
nodes are not run again, the node in flight is asked again with the same request_id, and schedules resume
with the ticks missed while it was down recorded as missed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import LazyPirateClient
from tests.integration.flows.flow_helpers import TRADER_FLOW, chain, flow_client, tasks_by_node, wait_cycle
from tests.support.processes import ROOT, TACoreProcess, wait_until


@pytest.fixture
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TACoreProcess]:
    # without the order process: the trade node's orders go to the stand-in venue the test counts
    proc = TACoreProcess(tmp_path_factory.mktemp("flows-restart"),
                         ["serve", "--no-data-agent", "--no-api", "--no-orders"]).start()
    try:
        proc.wait_healthy(timeout=90, workers=2)
        yield proc
    finally:
        proc.stop()


def pid_of(proc: TACoreProcess, kind: str | None = None, worker_id: str | None = None) -> int:
    for worker in proc.status()["workers"]:
        if worker.get("state") != "dead" and (kind is None or worker.get("kind") == kind) and \
                (worker_id is None or worker.get("worker_id") == worker_id):
            return int(worker["pid"])
    raise AssertionError(f"no live {kind or worker_id} in broker.status")


def running_task(client: LazyPirateClient, flow_id: str, cycle: int, node: str) -> dict[str, Any] | None:
    data = client.flow_cycle_get(flow_id, cycle)
    task = tasks_by_node(data)[node]
    return task if task["status"] == "running" else None


def test_kill_9_of_the_scheduler_mid_cycle_resumes_the_cycle(service: TACoreProcess) -> None:
    client = flow_client(service)
    try:
        client.flow_run(chain("resumed", {"action": "echo"}, {"action": "sleep", "duration_ms": 3000},
                              {"action": "echo"}))
        number = client.flow_cycle("resumed")["cycle"]
        before = wait_until(lambda: running_task(client, "resumed", number, "n1"), 30, "n1 running")
        first = tasks_by_node(client.flow_cycle_get("resumed", number))["n0"]
        # n0's row is written behind (within 20 ms); flow.status waits for it. A kill before that would ask n0
        # again after the restart (docs/flows.md: its output comes back, with the new reply's finished_at), and
        # flow.cycle.get of a cycle in progress answers from memory, without that wait.
        client.flow_status("resumed")
        old_pid = pid_of(service, kind="flow-scheduler")
        os.kill(old_pid, signal.SIGKILL)
        wait_until(lambda: pid_of(service, kind="flow-scheduler") != old_pid, 60, "a new scheduler process")
        cycle = wait_cycle(client, "resumed", number, timeout=60)
        tasks = tasks_by_node(cycle)
        assert cycle["status"] == "completed"
        assert tasks["n0"]["finished_at"] == first["finished_at"] and tasks["n0"]["attempt"] == 1  # not re-run
        assert tasks["n1"]["request_id"] == before["request_id"] and tasks["n1"]["attempt"] == 1  # asked again
        assert tasks["n2"]["status"] == "completed"
    finally:
        client.close()


def test_ticks_missed_while_the_scheduler_was_down_are_recorded(service: TACoreProcess) -> None:
    client = flow_client(service)
    try:
        client.flow_run(chain("ticking", {"action": "noop"}, cycle_interval="1s"))
        wait_until(lambda: len(client.flow_cycles("ticking")["cycles"]) >= 1, 30, "a first cycle")
        pid = pid_of(service, kind="flow-scheduler")
        os.kill(pid, signal.SIGSTOP)  # frozen for a few ticks, then killed: the ticks in between never ran
        time.sleep(4.0)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: pid_of(service, kind="flow-scheduler") != pid, 60, "a new scheduler process")
        wait_until(lambda: any(c["status"] == "missed" for c in client.flow_cycles("ticking")["cycles"]), 30,
                   "missed ticks recorded")
        time.sleep(2.5)
        client.flow_stop("ticking")
        cycles = client.flow_cycles("ticking", limit=1000)["cycles"]
        times = [c["scheduled_at"] for c in cycles]
        assert len(times) == len(set(times))  # one cycle per scheduled time, whatever happened
        ran = [c for c in cycles if c["status"] != "missed"]
        assert ran[0]["scheduled_at"] > max(c["scheduled_at"] for c in cycles if c["status"] == "missed")
        assert all(c["status"] in ("completed", "missed") for c in cycles)
    finally:
        client.close()


def test_kill_9_of_a_worker_running_a_node_reruns_it_elsewhere(service: TACoreProcess) -> None:
    client = flow_client(service)
    try:
        client.flow_run(chain("worker_dies", {"action": "sleep", "duration_ms": 3000}, {"action": "echo"}))
        number = client.flow_cycle("worker_dies")["cycle"]
        task = wait_until(lambda: running_task(client, "worker_dies", number, "n0"), 30, "n0 running")
        time.sleep(0.3)
        busy = [w for w in service.status()["workers"] if w.get("kind") == "worker" and
                any(c["request_id"] == task["request_id"] for c in w.get("current", []))]
        assert busy, "no pool worker holds the node"
        os.kill(int(busy[0]["pid"]), signal.SIGKILL)
        cycle = wait_cycle(client, "worker_dies", number, timeout=60)
        assert cycle["status"] == "completed"
        assert tasks_by_node(cycle)["n0"]["request_id"] == task["request_id"]  # node.execute is idempotent
    finally:
        client.close()


def test_a_trade_nodes_order_is_placed_once_across_restarts(service: TACoreProcess, tmp_path: Path) -> None:
    orders = tmp_path / "orders.log"
    log = (tmp_path / "order-worker.out").open("ab")
    venue = subprocess.Popen([sys.executable, "-m", "tests.support.order_worker", service.backend, "orders"],
                             cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "IDEMPOTENCY_URL": f"sqlite:///{tmp_path / 'idem.db'}",
                                  "ORDER_LOG": str(orders), "ORDER_MS": "3000"})
    log.close()
    client = flow_client(service)
    try:
        wait_until(lambda: any(w.get("worker_id") == "orders" for w in service.status()["workers"]), 30,
                   "the order worker")
        client.flow_run(TRADER_FLOW)
        number = client.flow_cycle("trader")["cycle"]
        task = wait_until(lambda: running_task(client, "trader", number, "buy"), 30, "the trade node running")
        time.sleep(0.5)  # the order is being placed
        holder = [w for w in service.status()["workers"] if w.get("kind") == "worker" and
                  any(c["request_id"] == task["request_id"] for c in w.get("current", []))]
        scheduler = pid_of(service, kind="flow-scheduler")
        os.kill(scheduler, signal.SIGKILL)  # the scheduler and the pool worker running the node die
        if holder:
            os.kill(int(holder[0]["pid"]), signal.SIGKILL)
        wait_until(lambda: pid_of(service, kind="flow-scheduler") != scheduler, 60, "a new scheduler process")
        cycle = wait_cycle(client, "trader", number, timeout=90)
        assert cycle["status"] == "completed", cycle
        placed = orders.read_text().splitlines()
        coid = tasks_by_node(cycle)["buy"]["output_data"]["output"]["client_order_id"]
        assert placed == [f"{coid} buy 0.01 BTCUSDT"]  # once, under the id derived from flow/cycle/node
    finally:
        client.close()
        venue.kill()
        venue.wait(5)
