"""``indicator_node``: a TA-Lib indicator over the closes that arrive (a price node's payload, or numbers).

The indicator is computed from the stored candles each cycle brings, so its state after a restart is the
one those candles give: nothing lives only in a worker's memory.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from tacore.flows.nodes.base import NodeBase, NodeConfig, NodeContext, NodeFailed
from tacore.flows.nodes.registry import register_node
from tacore.flows.nodes.values import clean, first_input, series_of

Indicator = Literal["SMA", "EMA", "RSI", "MACD", "BBANDS", "ATR", "MOM", "ROC", "WMA"]


class IndicatorConfig(NodeConfig):
    indicator: Indicator = "SMA"
    period: int = Field(14, ge=2, le=1000)
    source: str = "close"
    fast: int = Field(12, ge=2, le=500)
    slow: int = Field(26, ge=2, le=500)
    signal: int = Field(9, ge=1, le=500)
    stddev: float = Field(2.0, gt=0, le=10)


@register_node("indicator_node", "ta_indicator_node")
class IndicatorNode(NodeBase):
    description = "a TA-Lib indicator (SMA, EMA, RSI, MACD, BBANDS, ATR, MOM, ROC, WMA) over the input's closes"
    Config = IndicatorConfig
    inputs = ("price_data_handle", "input")
    outputs = ("indicator_handle", "output")

    def execute(self, ctx: NodeContext, config: IndicatorConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        import talib

        raw = inputs.get("price_data_handle", inputs.get("input"))
        if raw is None:
            raw = first_input(inputs)
        closes = np.asarray(series_of(raw, config.source), dtype=float)
        name = config.indicator
        extra: dict[str, Any] = {}
        if name == "MACD":
            macd, signal, hist = talib.MACD(closes, fastperiod=config.fast, slowperiod=config.slow,
                                            signalperiod=config.signal)
            values, extra = macd, {"signal": clean(list(signal)), "histogram": clean(list(hist))}
        elif name == "BBANDS":
            upper, middle, lower = talib.BBANDS(closes, timeperiod=config.period, nbdevup=config.stddev,
                                                nbdevdn=config.stddev)
            values, extra = middle, {"upper": clean(list(upper)), "lower": clean(list(lower))}
        elif name == "ATR":
            candles = raw.get("candles") if isinstance(raw, dict) else None
            if not candles:
                raise NodeFailed("ATR needs candles (high, low, close): connect a price node")
            high = np.asarray(series_of(candles, "high"), dtype=float)
            low = np.asarray(series_of(candles, "low"), dtype=float)
            values = talib.ATR(high, low, closes, timeperiod=config.period)
        else:
            values = getattr(talib, name)(closes, timeperiod=config.period)
        out = clean(list(values))
        last = next((v for v in reversed(out) if v is not None), None)
        if last is None:
            ctx.log("WARNING", f"{name}({config.period}) has no value yet: {len(closes)} closes are too few")
        payload = {"indicator": name, "period": config.period, "values": out, "last": last, "close": clean(
            list(closes)), **extra}
        return {"indicator_handle": payload, "output": payload}
