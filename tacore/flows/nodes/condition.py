"""``condition_node``: compare, crossover, and/or. It emits its input on ``true`` or on ``false``: the handle
not taken carries nothing, so the nodes behind it are ``skipped``."""

from __future__ import annotations

from typing import Any, Literal

from tacore.flows.nodes.base import NodeBase, NodeConfig, NodeContext, NodeFailed
from tacore.flows.nodes.registry import register_node
from tacore.flows.nodes.values import path_get, series_of, to_float

Op = Literal["gt", "lt", "ge", "le", "eq", "ne", "crosses_above", "crosses_below", "and", "or", "not"]
Operand = float | str | bool | None


class ConditionConfig(NodeConfig):
    op: Op = "gt"
    #: a number, or a path into the inputs: ``input.last``, ``a.values``, ``b`` (a handle, then keys)
    left: Operand = "input.last"
    right: Operand = 0.0
    field: str = "close"


def _resolve(operand: Operand, inputs: dict[str, Any]) -> Any:
    if isinstance(operand, str):
        head, _, rest = operand.partition(".")
        if head not in inputs:
            raise NodeFailed(f"operand {operand!r}: no input on handle {head!r} (have {', '.join(inputs) or 'none'})")
        return path_get(inputs[head], rest)
    return operand


def _truthy(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value.get("result", value))
    return bool(value)


def evaluate(config: ConditionConfig, inputs: dict[str, Any]) -> bool:
    op = config.op
    left = _resolve(config.left, inputs)
    if op == "not":
        return not _truthy(left)
    right = _resolve(config.right, inputs)
    if op in ("and", "or"):
        return (_truthy(left) and _truthy(right)) if op == "and" else (_truthy(left) or _truthy(right))
    if op in ("crosses_above", "crosses_below"):
        a = series_of(left, config.field)
        b = series_of(right, config.field)
        if len(a) < 2:
            raise NodeFailed(f"{op}: the left series needs two values, it has {len(a)}")
        b = b * 2 if len(b) == 1 else b
        (a0, a1), (b0, b1) = a[-2:], b[-2:]
        return a0 <= b0 and a1 > b1 if op == "crosses_above" else a0 >= b0 and a1 < b1
    x = to_float(series_of(left, config.field)[-1])
    y = to_float(series_of(right, config.field)[-1])
    return {"gt": x > y, "lt": x < y, "ge": x >= y, "le": x <= y, "eq": x == y, "ne": x != y}[op]


@register_node("condition_node", "if_node")
class ConditionNode(NodeBase):
    description = "compare (gt lt ge le eq ne), crosses_above/below, and/or/not; emits on true or false"
    Config = ConditionConfig
    inputs = ("*",)
    outputs = ("true", "false")

    def execute(self, ctx: NodeContext, config: ConditionConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        result = evaluate(config, inputs)
        ctx.log("INFO", f"{config.op}: {result}")
        payload = {"result": result, "inputs": inputs}
        return {"true": payload} if result else {"false": payload}
