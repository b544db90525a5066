"""Shared by the flow integration tests: a client on a running service, waiting for cycles."""

from __future__ import annotations

import time
from typing import Any

from clients import LazyPirateClient, RemoteError
from tests.support.processes import TACoreProcess, wait_until


def flow_client(proc: TACoreProcess) -> LazyPirateClient:
    client = LazyPirateClient(proc.frontend, timeout_ms=10_000, retries=0)
    wait_until(lambda: _answers(client), 60.0, "the flow scheduler to answer flow.stats", interval=0.2)
    return client


def _answers(client: LazyPirateClient) -> bool:
    try:
        client.call("flow.stats", {}, timeout_ms=3000)
        return True
    except (RemoteError, Exception):
        return False


def wait_cycle(client: LazyPirateClient, flow_id: str, cycle: int, timeout: float = 30.0,
               done: tuple[str, ...] = ("completed", "failed", "cancelled")) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = client.call("flow.cycle.get", {"flow_id": flow_id, "cycle": cycle})
        except RemoteError as exc:
            if exc.details and exc.details[0].get("type") == "not_found":
                return None
            raise
        return data if data["status"] in done else None

    result: dict[str, Any] = wait_until(finished, timeout, f"cycle {cycle} of {flow_id} to finish", interval=0.1)
    return result


def tasks_by_node(cycle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["node_id"]: t for t in cycle["tasks"]}


def chain(flow_id: str, *actions: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A flow of action nodes n0 -> n1 -> ... with the given configs."""
    nodes = [{"id": f"n{i}", "type": "action_node", "config": config} for i, config in enumerate(actions)]
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(len(actions) - 1)]
    return {"flow_id": flow_id, **options, "flow_json": {"nodes": nodes, "edges": edges}}


#: a signal node saying BUY, then a trade node buying 0.01 BTCUSDT (retried up to 5 times)
TRADER_FLOW: dict[str, Any] = {"flow_id": "trader", "flow_json": {"nodes": [
    {"id": "signal", "type": "action_node", "config": {"action": "noop", "output": {"action": "BUY"}}},
    {"id": "buy", "type": "trade_node", "retries": 5, "config": {"symbol": "BTCUSDT", "quantity": "0.01"}}],
    "edges": [{"source": "signal", "target": "buy"}]}}


def now() -> float:
    return time.time()
