"""``data_processor``: window and arithmetic operations on a series (the document's ``rolling_avg``, ``window``)."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from tacore.flows.nodes.base import NodeBase, NodeConfig, NodeContext, NodeFailed
from tacore.flows.nodes.registry import register_node
from tacore.flows.nodes.values import first_input, series_of

Operation = Literal["rolling_avg", "rolling_sum", "rolling_min", "rolling_max", "diff", "pct_change", "last",
                    "mean", "sum", "min", "max", "std", "zscore", "scale", "add", "abs"]


class ProcessorConfig(NodeConfig):
    operation: Operation = "rolling_avg"
    window: int = Field(5, ge=1, le=10_000)
    field: str = "close"
    factor: float = 1.0
    value: float = 0.0


def apply(operation: str, series: list[float], window: int, factor: float = 1.0, value: float = 0.0) -> Any:
    """One operation on a series: a list for the rolling/elementwise ones, a number for the reductions."""
    if not series:
        raise NodeFailed(f"{operation}: the input series is empty")
    if operation.startswith("rolling_"):
        reducers: dict[str, Callable[[list[float]], float]] = {
            "rolling_avg": statistics.fmean, "rolling_sum": math.fsum, "rolling_min": min, "rolling_max": max}
        reduce = reducers[operation]
        return [round(float(reduce(series[i - window + 1:i + 1])), 10) for i in range(window - 1, len(series))]
    if operation == "diff":
        return [round(b - a, 10) for a, b in itertools.pairwise(series)]
    if operation == "pct_change":
        return [None if a == 0 else round((b - a) / a, 10) for a, b in itertools.pairwise(series)]
    if operation == "scale":
        return [round(x * factor, 10) for x in series]
    if operation == "add":
        return [round(x + value, 10) for x in series]
    if operation == "abs":
        return [abs(x) for x in series]
    tail = series[-window:] if operation in ("mean", "std", "zscore") and window > 1 else series
    if operation == "last":
        return series[-1]
    if operation == "mean":
        return round(statistics.fmean(tail), 10)
    if operation == "sum":
        return round(sum(series), 10)
    if operation == "min":
        return min(series)
    if operation == "max":
        return max(series)
    if operation == "std":
        return round(statistics.pstdev(tail), 10) if len(tail) > 1 else 0.0
    if operation == "zscore":
        std = statistics.pstdev(tail) if len(tail) > 1 else 0.0
        return 0.0 if std == 0 else round((series[-1] - statistics.fmean(tail)) / std, 10)
    raise NodeFailed(f"unknown operation {operation!r}")


def result_payload(operation: str, result: Any, window: int) -> dict[str, Any]:
    if isinstance(result, list):
        last = next((v for v in reversed(result) if v is not None), None)
        return {"operation": operation, "window": window, "values": result, "last": last}
    return {"operation": operation, "window": window, "value": result, "last": result}


@register_node("data_processor", "data_processor_node")
class DataProcessorNode(NodeBase):
    description = "rolling_avg/sum/min/max over a window, diff, pct_change, reductions, scale, add"
    Config = ProcessorConfig
    inputs = ("*",)
    outputs = ("output",)

    def execute(self, ctx: NodeContext, config: ProcessorConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        series = series_of(first_input(inputs), config.field)
        result = apply(config.operation, series, config.window, config.factor, config.value)
        return {"output": result_payload(config.operation, result, config.window)}
