"""``action_node``: the workflow demo's actions (its tasks' ``action``), plus plain ones flows and tests use.

The demo's actions simulate their work as the demo does (a pause, then its result: no market is touched;
use the price and trade nodes for real data and orders). ``echo`` returns its input, ``sleep`` waits
``duration_ms`` (cancellable), ``fail`` fails while the task's attempt is at most ``fail_attempts``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tacore.flows.nodes.base import NodeBase, NodeConfig, NodeContext, NodeFailed
from tacore.flows.nodes.registry import register_node

#: the demo's simulated actions: (pause in ms, result)
DEMO_ACTIONS: dict[str, tuple[int, dict[str, Any]]] = {
    "collect_real_time_data": (50, {"price": 100.0, "volume": 10000}),
    "calculate_trading_signal": (30, {"signal": "BUY", "price": 100.0}),
    "execute_order": (100, {"order_id": "ORDER_123", "status": "FILLED", "simulated": True}),
    "collect_trend_data": (200, {"trend": "UP", "strength": 0.8}),
    "calculate_trend": (100, {"action": "HOLD", "confidence": 0.7}),
}

Action = Literal["collect_real_time_data", "calculate_trading_signal", "execute_order", "collect_trend_data",
                 "calculate_trend", "echo", "sleep", "fail", "noop"]


class ActionConfig(NodeConfig):
    action: Action
    duration_ms: float | None = Field(None, ge=0, le=86_400_000)
    fail_attempts: int = Field(0, ge=0, le=100)
    ignore_cancel: bool = False
    output: Any = None


@register_node("action_node", "task_node")
class ActionNode(NodeBase):
    description = "the workflow demo's actions (simulated), echo, sleep, fail, noop"
    Config = ActionConfig
    inputs = ("*",)
    outputs = ("output",)

    def execute(self, ctx: NodeContext, config: ActionConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        action = config.action
        if action == "noop":
            return {"output": config.output}
        if action == "fail" and ctx.attempt <= config.fail_attempts:
            raise NodeFailed(f"fail action: attempt {ctx.attempt} of the {config.fail_attempts} that fail")
        pause_ms, result = DEMO_ACTIONS.get(action, (0, {}))
        pause_s = (config.duration_ms if config.duration_ms is not None else pause_ms) / 1000.0
        if pause_s > 0:
            if config.ignore_cancel:
                import time

                time.sleep(pause_s)
            elif ctx.wait(pause_s):
                ctx.check()
        if action in DEMO_ACTIONS:
            return {"output": config.output if config.output is not None else dict(result)}
        return {"output": config.output if config.output is not None else inputs}
