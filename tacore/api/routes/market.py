"""Market reads over HTTP: the latest price of a symbol and its stored candles.

Each is one broker call to the data agent (``get.market_data``, ``kline.history``), so HTTP users get
exactly what ZeroMQ clients get, and every call lands in the request log. The analytics reads
(``/scan``, ``/risk``, ``/analysis/{symbol}``) live in ``routes/analytics.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from tacore.api.deps import LinkDep, SamplerDep
from tacore.api.routes.data_agent import forward
from tacore.api.schemas import Problem
from tacore.api.security import require_key
from tacore.intervals import INTERVALS

router = APIRouter(tags=["market"], dependencies=[Depends(require_key)])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "API key missing or wrong (when `API_KEY` is set)"},
    422: {"description": "invalid symbol, interval or range; `detail` names each field"},
    502: {"model": Problem, "description": "the data agent failed on the call"},
    503: {"model": Problem, "description": "the broker or the data agent is down"},
}
_SYMBOL = Path(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9.]+$", description="e.g. BTCUSDT or AAPL",
               examples=["BTCUSDT"])
IntervalName = Annotated[str, Query(pattern="^(" + "|".join(INTERVALS) + ")$", description="candle interval")]
_MAX_MS = 2**62  # every stored open time is far below this; larger values are refused, never wrapped


class MarketEntry(BaseModel):
    """One symbol of ``get.market_data``: price, current 1m/1d candles, 24 h change and range."""

    model_config = ConfigDict(extra="allow")
    symbol: str
    status: str = Field(description="`ok`, or `no_data` when nothing is stored for the symbol")


class Candle(BaseModel):
    model_config = ConfigDict(extra="allow")
    open_time: int = Field(description="epoch ms")
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool


class KlinePage(BaseModel):
    symbol: str
    interval: str
    count: int
    candles: list[Candle]


@router.get("/market/{symbol}", response_model=MarketEntry, responses=_RESPONSES,
            summary="Latest price, 24 h change, high, low and volume of one symbol (get.market_data)")
async def market(link: LinkDep, sampler: SamplerDep, symbol: Annotated[str, _SYMBOL]) -> MarketEntry:
    data = await forward(link, sampler, "get.market_data", {"symbols": [symbol.upper()]})
    entries = data.get("symbols") or {}
    entry = entries.get(symbol.upper()) if isinstance(entries, dict) else None
    if not isinstance(entry, dict):
        entry = {"symbol": symbol.upper(), "status": "no_data"}
    return MarketEntry(**entry)


@router.get("/klines", response_model=KlinePage, responses=_RESPONSES,
            summary="Stored candles, oldest first (kline.history)")
async def klines(link: LinkDep, sampler: SamplerDep,
                 symbol: Annotated[str, Query(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9.]+$")],
                 interval: IntervalName = "1m",
                 start: Annotated[int | None, Query(ge=0, le=_MAX_MS, description="first open time, epoch ms")] = None,
                 end: Annotated[int | None, Query(ge=0, le=_MAX_MS, description="last open time, epoch ms")] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> KlinePage:
    params: dict[str, Any] = {"symbol": symbol.upper(), "interval": interval, "limit": limit}
    if start is not None:
        params["start"] = start
    if end is not None:
        params["end"] = end
    data = await forward(link, sampler, "kline.history", params)
    return KlinePage(**data)
