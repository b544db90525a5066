"""``binance_price_node``: stored candles of any market's symbol, through the data agent's ``kline.history``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from tacore.flows.nodes.base import NodeBase, NodeConfig, NodeContext
from tacore.flows.nodes.registry import register_node
from tacore.intervals import INTERVALS


class PriceConfig(NodeConfig):
    symbol: str = Field(min_length=1, max_length=32)
    interval: str = "1m"
    limit: int = Field(100, ge=1, le=1000)
    end: int | None = Field(None, ge=0, description="epoch ms: candles up to this open time (backtests)")

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if value not in INTERVALS:
            raise ValueError(f"interval is one of {', '.join(INTERVALS)}")
        return value


@register_node("binance_price_node", "price_node")
class PriceNode(NodeBase):
    description = "the latest stored candles of a symbol (any market), oldest first"
    Config = PriceConfig
    inputs = ()
    outputs = ("price_data_handle", "output")

    def execute(self, ctx: NodeContext, config: PriceConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"symbol": config.symbol, "interval": config.interval, "limit": config.limit}
        if config.end is not None:
            params["end"] = config.end
        data = ctx.call("kline.history", params, timeout_s=10.0)
        candles = list(data.get("candles", []))
        closes = [float(c["close"]) for c in candles]
        payload = {"symbol": config.symbol, "interval": config.interval, "count": len(candles),
                   "candles": candles, "close": closes, "last_price": closes[-1] if closes else None,
                   "last_open_time": candles[-1]["open_time"] if candles else None}
        ctx.log("INFO", f"{len(candles)} {config.interval} candles of {config.symbol}")
        return {"price_data_handle": payload, "output": payload}
