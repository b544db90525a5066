"""Reading numbers out of what arrives on a handle: a price node's payload, a list, a number, a dict path."""

from __future__ import annotations

import math
from typing import Any

from tacore.flows.nodes.base import NodeFailed


def first_input(inputs: dict[str, Any]) -> Any:
    """The one value that arrived (the ``input`` handle's, else the only handle's)."""
    if "input" in inputs:
        return inputs["input"]
    if len(inputs) == 1:
        return next(iter(inputs.values()))
    if not inputs:
        raise NodeFailed("no input arrived: connect an edge to this node")
    raise NodeFailed(f"several inputs arrived ({', '.join(sorted(inputs))}); name the one to use")


def path_get(value: Any, path: str) -> Any:
    """``a.b.0.c`` into dicts and lists; NodeFailed naming the missing step."""
    current = value
    for step in filter(None, path.split(".")):
        if isinstance(current, dict) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit() and -len(current) <= int(step) < len(current):
            current = current[int(step)]
        else:
            raise NodeFailed(f"no {step!r} in the input at {path!r}")
    return current


def series_of(value: Any, field: str = "close") -> list[float]:
    """Numbers from a price payload (``candles``/``close``), a list of numbers or dicts, or one number."""
    if isinstance(value, dict):
        for key in (field, "values", "output"):
            if key in value and isinstance(value[key], list | int | float | str):
                return series_of(value[key], field)
        if "candles" in value:
            return series_of(value["candles"], field)
        if "value" in value:
            return series_of(value["value"], field)
        if "last" in value:
            return series_of(value["last"], field)
        raise NodeFailed(f"the input has no {field!r}, values or candles to read numbers from")
    if isinstance(value, list):
        out = []
        for item in value:
            number = item.get(field) if isinstance(item, dict) else item
            out.append(to_float(number))
        return out
    return [to_float(value)]


def to_float(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise NodeFailed(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise NodeFailed(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise NodeFailed(f"{value!r} is not a finite number")
    return number


def clean(values: list[float]) -> list[float | None]:
    """NaN (TA-Lib's warm-up) as null, so outputs stay JSON."""
    return [None if v != v else round(v, 10) for v in values]
