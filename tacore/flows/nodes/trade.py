"""``trade_node``: an order through the broker's ``execute.order`` (the orders process), placed once.

Its ``client_order_id`` (and the request's ``request_id``) derive from flow, cycle and node, so a retry,
a re-dispatch after a worker died or a re-run of the cycle after a restart meets the order the first run
placed instead of placing a second one (the order ledger answers a known ``client_order_id`` with its
order). A run under ``flow.cycle.retry`` keeps the id too.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from tacore.flows.nodes.base import NodeBase, NodeConfig, NodeContext
from tacore.flows.nodes.registry import register_node
from tacore.flows.nodes.values import path_get


def client_order_id(flow_id: str, cycle: int, node_id: str) -> str:
    """``tf-`` and 33 hex characters (36 in all: the longest id Binance and the ledger accept)."""
    digest = hashlib.sha256(f"{flow_id}\x00{cycle}\x00{node_id}".encode()).hexdigest()
    return "tf-" + digest[:33]


class TradeConfig(NodeConfig):
    symbol: str = Field(min_length=1, max_length=32)
    #: buy or sell, or ``signal``: the action the input carries (``BUY``/``SELL``; ``HOLD`` places nothing)
    action: Literal["buy", "sell", "signal"] = "signal"
    quantity: Decimal = Field(gt=0)
    order_type: Literal["market", "limit", "stop", "stop_limit"] = "market"
    price: Decimal | None = Field(None, gt=0)
    stop_price: Decimal | None = Field(None, gt=0)
    time_in_force: Literal["day", "gtc", "ioc", "fok"] = "day"
    account: str | None = None
    venue: str | None = None
    signal_path: str = "action"

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()


def signal_action(inputs: dict[str, Any], path: str) -> str | None:
    """``buy``/``sell`` from the input (``{"action": "BUY"}``, ``{"signal": "SELL"}``, a condition's payload)."""
    for value in inputs.values():
        for candidate in (path, "signal", "action", "input.action", "input.signal"):
            try:
                found = path_get(value, candidate)
            except Exception:
                continue
            if isinstance(found, str) and found.lower() in ("buy", "sell", "hold"):
                return None if found.lower() == "hold" else found.lower()
    return None


@register_node("trade_node", "order_node")
class TradeNode(NodeBase):
    description = "places an order with execute.order (client_order_id derived from flow/cycle/node)"
    Config = TradeConfig
    inputs = ("*",)
    outputs = ("output",)

    def execute(self, ctx: NodeContext, config: TradeConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        action: str | None = config.action
        if action == "signal":
            action = signal_action(inputs, config.signal_path)
            if action is None:
                ctx.log("INFO", "the signal says hold (or carries no action): no order")
                return {"output": {"status": "no_order", "reason": "hold"}}
        coid = client_order_id(ctx.flow_id, ctx.cycle, ctx.node_id)
        params: dict[str, Any] = {"symbol": config.symbol, "action": action, "quantity": str(config.quantity),
                                  "order_type": config.order_type, "time_in_force": config.time_in_force,
                                  "client_order_id": coid}
        for key in ("price", "stop_price"):
            value = getattr(config, key)
            if value is not None:
                params[key] = str(value)
        if config.account:
            params["account"] = config.account
        if config.venue:
            params["venue"] = config.venue
        ctx.log("INFO", f"execute.order {action} {config.quantity} {config.symbol} client_order_id={coid}")
        order = ctx.call("execute.order", params, timeout_s=30.0, request_id=coid)
        return {"output": {"status": "placed", "client_order_id": coid, "order": order}}
