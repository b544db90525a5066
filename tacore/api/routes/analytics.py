"""Analytics reads over HTTP: market scans, portfolio risk and technical/AI analysis.

Each route is one broker call to the data agent (``scan.market``, ``evaluate.risk``, ``analyze.stock``),
so HTTP users get exactly what ZeroMQ clients get, and every call lands in the request log. The sidecar
validates a request with the handler's own params model first (``ScanParams``, ``RiskParams``,
``AnalysisParams``: light modules, no numpy or TA-Lib here), so a bad one is a 422 naming its field without
a broker round trip, then forwards what the client sent. ``GET`` takes the common cases as query
parameters; ``POST`` takes the method's full params as JSON (a scan's filter chain, a book by weight).
Errors map as in ``routes/market.py``: INVALID_PARAMS 422, the agent down or too slow 503, any other
failure 502.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tacore.analytics.params import ANALYSIS_TYPES, MAX_LIMIT, AnalysisParams, RiskParams
from tacore.analytics.scan_criteria import MAX_LIMIT as SCAN_MAX_LIMIT
from tacore.analytics.scan_criteria import MAX_OFFSET, ScanParams
from tacore.analytics.scan_fields import FieldName
from tacore.api.deps import LinkDep, SamplerDep
from tacore.api.routes.data_agent import forward
from tacore.api.schemas import Problem
from tacore.api.security import require_key
from tacore.intervals import INTERVALS

router = APIRouter(tags=["analytics"], dependencies=[Depends(require_key)])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "API key missing or wrong (when `API_KEY` is set)"},
    422: {"description": "invalid params (the method's INVALID_PARAMS); `detail` names each field"},
    502: {"model": Problem, "description": "the data agent failed on the call"},
    503: {"model": Problem, "description": "the broker or the data agent is down, or did not answer in time"},
}
_BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not valid JSON"}, **_RESPONSES}
#: deadlines of the forwarded calls: an ``ai`` analysis waits on the LLM endpoint (LLM_TIMEOUT_S, retries)
_TIMEOUT_MS = 20_000
_AI_TIMEOUT_MS = 90_000
_MAX_POSITIONS_QUERY = 200  # a longer book goes in a POST body

IntervalName = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
assert get_args(IntervalName) == INTERVALS
AnalysisType = Literal["technical", "ai"]
assert get_args(AnalysisType) == ANALYSIS_TYPES


# -- replies (documented shapes; every reply carries more than listed, see docs/analytics.md) ----------------
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ScanFilterCount(_Open):
    source: str = Field(description="where the link came from, e.g. `criteria.filters.0`")
    field: str
    op: str
    dropped: int
    remaining: int


class ScanMatch(_Open):
    symbol: str
    values: dict[str, float | None] = Field(description="every field the chain and `sort_by` used (null: no value)")


class ScanReply(_Open):
    """``scan.market``'s reply: what was scanned, each filter's drops in chain order, the page of matches."""

    market: str
    quote_currency: str | None = None
    timeframe: str
    as_of: int = Field(description="epoch ms the scan looked from")
    scanned: int
    matched: int
    count: int
    filters: list[ScanFilterCount]
    results: list[ScanMatch]


class RiskReply(_Open):
    """``evaluate.risk``'s reply: values and weights, volatility, VaR/CVaR, drawdown, Sharpe/Sortino, beta,
    correlation, concentration."""

    status: str = Field(description="`ok`, `partial` (some positions lack history) or `insufficient_history`")
    interval: str | None = None
    positions: list[dict[str, Any]] = Field(default_factory=list)
    insufficient_history: list[dict[str, Any]] = Field(default_factory=list)


class AnalysisReply(_Open):
    """``analyze.stock``'s reply: indicators, levels, verdicts and signal; for `ai` the model's analysis too."""

    symbol: str
    analysis_type: str
    interval: str | None = None
    status: str = Field(description="`ok`, `partial`, `insufficient_history`; `fallback`: ai gave technical advice")


# -- validation ------------------------------------------------------------------------------------------
def _validated(model: type[BaseModel], raw: dict[str, Any], where: str, path: frozenset[str] = frozenset()) -> None:
    """``raw`` checked by the handler's params model; its errors as FastAPI's 422, located in ``where`` (or in
    the path, for the fields named in ``path``)."""
    try:
        model.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError([
            {"type": err["type"], "loc": ("path" if err["loc"][:1] and err["loc"][0] in path else where, *err["loc"]),
             "msg": err["msg"], "input": None}
            for err in exc.errors(include_url=False)
        ]) from None


def _book(name: str, items: list[str] | None) -> dict[str, str] | None:
    """``["AAPL:100", "GOOGL:50,MSFT:-3"]`` -> ``{"AAPL": "100", ...}``: amounts stay as written (Decimal strings)."""
    if not items:
        return None
    book: dict[str, str] = {}
    problems = []
    for item in (part.strip() for value in items for part in value.split(",")):
        symbol, sep, amount = item.partition(":")
        try:
            if not sep or not symbol.strip() or not Decimal(amount.strip()).is_finite():
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"{item!r} is not SYMBOL:AMOUNT")
            continue
        book[symbol.strip()] = amount.strip()
    if len(book) > _MAX_POSITIONS_QUERY:
        problems.append(f"at most {_MAX_POSITIONS_QUERY} positions in the query; POST /risk takes more")
    if problems:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": "; ".join(problems),
                                       "input": None}])
    return book


async def _body(request: Request) -> dict[str, Any]:
    """The JSON the client sent (FastAPI has parsed and validated it already): forwarded as is."""
    raw = await request.json()
    if not isinstance(raw, dict):  # cannot happen: the body model accepted these bytes as an object
        raise RequestValidationError([{"type": "model_type", "loc": ("body",), "msg": "must be an object",
                                       "input": None}])
    return raw


# -- scan.market -----------------------------------------------------------------------------------------
@router.get("/scan", response_model=ScanReply, responses=_RESPONSES,
            summary="Symbols of a market passing simple criteria (scan.market); POST /scan takes a filter chain")
async def scan_get(
    link: LinkDep, sampler: SamplerDep,
    market: Annotated[str | None, Query(min_length=1, max_length=32, description="`CRYPTO`, `US`...; "
                                        "the default market when omitted", examples=["US"])] = None,
    min_volume: Annotated[float | None, Query(ge=0, description="traded value in the quote currency over the "
                                              "last day, at least", examples=[1_000_000])] = None,
    price_min: Annotated[float | None, Query(ge=0, description="last price at least")] = None,
    price_max: Annotated[float | None, Query(ge=0, description="last price at most")] = None,
    timeframe: Annotated[IntervalName, Query(description="candles the fields read")] = "1d",
    sort_by: Annotated[FieldName | Literal["symbol"], Query(description="a field (its default period) or `symbol`")]
    = "symbol",
    order: Annotated[Literal["asc", "desc"] | None, Query(description="default: desc for a field, asc for symbol")]
    = None,
    limit: Annotated[int, Query(ge=1, le=SCAN_MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    include: Annotated[list[str] | None, Query(description="regular expression (RE2, full match) a symbol "
                                               "must match one of; repeatable")] = None,
    exclude: Annotated[list[str] | None, Query(description="regular expression dropping symbols; repeatable")]
    = None,
) -> ScanReply:
    criteria: dict[str, Any] = {"timeframe": timeframe, "sort_by": sort_by, "limit": limit, "offset": offset}
    if min_volume is not None:
        criteria["min_volume"] = min_volume
    if price_min is not None and price_max is not None:
        criteria["price_range"] = [price_min, price_max]
    elif price_min is not None or price_max is not None:  # one bound: a link of the chain
        op, bound = ("egreater", price_min) if price_min is not None else ("eless", price_max)
        criteria["filters"] = [{"field": "price", "op": op, "value": bound}]
    if order is not None:
        criteria["order"] = order
    if include:
        criteria["include"] = include
    if exclude:
        criteria["exclude"] = exclude
    params: dict[str, Any] = {"criteria": criteria} if market is None else {"market": market, "criteria": criteria}
    _validated(ScanParams, params, "query")
    return ScanReply(**await forward(link, sampler, "scan.market", params, _TIMEOUT_MS, where="query"))


@router.post("/scan", response_model=ScanReply, responses=_BODY_RESPONSES,
             summary="Symbols of a market passing a chain of filters (scan.market, the method's params as JSON)")
async def scan_post(
    request: Request, link: LinkDep, sampler: SamplerDep,
    body: Annotated[ScanParams, Body(openapi_examples={
        "design document": {"value": {"market": "US", "criteria": {"min_volume": 1_000_000,
                                                                   "price_range": [10, 500]}}},
        "filter chain": {"value": {"market": "CRYPTO", "criteria": {
            "min_volume": 50_000_000,
            "filters": [{"field": "rsi", "op": "less", "value": 35},
                        {"field": "price", "op": "crosses_above", "value": {"field": "sma", "period": 50}}],
            "sort_by": "rsi", "limit": 20}}},
    })],
) -> ScanReply:
    return ScanReply(**await forward(link, sampler, "scan.market", await _body(request), _TIMEOUT_MS))


# -- evaluate.risk ---------------------------------------------------------------------------------------
@router.get("/risk", response_model=RiskReply, responses=_RESPONSES,
            summary="Risk of a book of quantities or weights (evaluate.risk); POST /risk takes the JSON params")
async def risk_get(
    link: LinkDep, sampler: SamplerDep,
    portfolio: Annotated[list[str] | None, Query(description="`SYMBOL:QUANTITY` (negative: short), repeatable "
                                                 "or comma-separated", examples=["AAPL:100,GOOGL:50"])] = None,
    weights: Annotated[list[str] | None, Query(description="`SYMBOL:WEIGHT` instead of quantities")] = None,
    notional: Annotated[Decimal | None, Query(gt=0, description="with weights: the book's value")] = None,
    benchmark: Annotated[str | None, Query(min_length=1, max_length=24, description="default: the market's "
                                           "(`risk.benchmarks` of trading_config.yaml)")] = None,
    interval: IntervalName = "1d",
    lookback_days: Annotated[float | None, Query(gt=0, le=3660)] = None,
    horizon: Annotated[int, Query(ge=1, le=250, description="VaR horizon in bars")] = 1,
    confidence: Annotated[list[float] | None, Query(description="VaR confidence levels, repeatable; "
                                                    "default 0.95 and 0.99")] = None,
    min_candles: Annotated[int, Query(ge=5, le=10_000)] = 30,
    risk_free_rate: Annotated[float, Query(ge=-0.5, le=1.0, description="annual")] = 0.0,
    end: Annotated[int | None, Query(ge=0, le=2**62, description="as-of time, epoch ms (default: now)")] = None,
) -> RiskReply:
    params: dict[str, Any] = {"interval": interval, "horizon": horizon, "min_candles": min_candles,
                              "risk_free_rate": risk_free_rate}
    quantities, weighted = _book("portfolio", portfolio), _book("weights", weights)
    if quantities is not None:
        params["portfolio"] = quantities
    if weighted is not None:
        params["weights"] = {symbol: float(weight) for symbol, weight in weighted.items()}
    optional = {"notional": None if notional is None else str(notional), "benchmark": benchmark,
                "lookback_days": lookback_days, "confidence_levels": confidence, "end": end}
    params.update({key: value for key, value in optional.items() if value is not None})
    _validated(RiskParams, params, "query")
    return RiskReply(**await forward(link, sampler, "evaluate.risk", params, _TIMEOUT_MS, where="query"))


@router.post("/risk", response_model=RiskReply, responses=_BODY_RESPONSES,
             summary="Risk of a book (evaluate.risk, the method's params as JSON)")
async def risk_post(
    request: Request, link: LinkDep, sampler: SamplerDep,
    body: Annotated[RiskParams, Body(openapi_examples={
        "design document": {"value": {"portfolio": {"AAPL": 100, "GOOGL": 50}}},
        "weights": {"value": {"weights": {"AAPL": 0.6, "BTCUSDT": 0.4}, "notional": "250000", "horizon": 5}},
    })],
) -> RiskReply:
    return RiskReply(**await forward(link, sampler, "evaluate.risk", await _body(request), _TIMEOUT_MS))


# -- analyze.stock ---------------------------------------------------------------------------------------
@router.get("/analysis/{symbol}", response_model=AnalysisReply, responses=_RESPONSES,
            summary="Technical analysis (TA-Lib indicators, verdicts, signal) or an LLM's (analyze.stock)")
async def analysis(
    link: LinkDep, sampler: SamplerDep,
    symbol: Annotated[str, Path(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9.]+$",
                                description="e.g. AAPL or BTCUSDT", examples=["AAPL"])],
    analysis_type: Annotated[AnalysisType, Query(description="`ai` needs LLM_* settings")] = "technical",
    interval: IntervalName = "1d",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="closed candles analysed, the newest")] = 500,
    end: Annotated[int | None, Query(ge=0, le=2**62, description="as of this time, epoch ms (default: now)")]
    = None,
) -> AnalysisReply:
    params: dict[str, Any] = {"symbol": symbol, "analysis_type": analysis_type, "interval": interval, "limit": limit}
    if end is not None:
        params["end"] = end
    _validated(AnalysisParams, params, "query", path=frozenset({"symbol"}))
    timeout = _AI_TIMEOUT_MS if analysis_type == "ai" else _TIMEOUT_MS
    return AnalysisReply(**await forward(link, sampler, "analyze.stock", params, timeout, where="query"))
