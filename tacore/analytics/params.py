"""The params models of ``evaluate.risk`` and ``analyze.stock``, kept apart from the analytics they drive.

Only pydantic and the symbol/interval checks: the handlers (``workers/methods/risk.py``, ``analysis.py``)
validate calls with them, and so does the sidecar (``tacore/api/routes/analytics.py``) before it forwards
an HTTP request, without loading numpy, TA-Lib or the LLM client. ``ScanParams`` lives with the scan's
criteria (``scan_criteria.py``) for the same reason.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tacore.intervals import INTERVAL_MS, MAX_TIME_MS, check_interval
from tacore.symbols import check_symbol

MAX_POSITIONS = 500
#: largest quantity, weight or notional taken (beyond it floats lose the cents the figures are read in)
MAX_AMOUNT = 10 ** 15
#: candles per symbol one request may read (lookback_days / interval)
MAX_BARS = 100_000
DAY_MS = 86_400_000
#: default lookback: a year, or 1,000 candles of an intraday interval if that is shorter
DEFAULT_LOOKBACK_DAYS = 365.0
DEFAULT_LOOKBACK_BARS = 1000


def _symbol_keys(value: Any) -> Any:
    """Upper-case the book's symbols, naming every bad or repeated one."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    problems = []
    for key, amount in value.items():
        try:
            symbol = check_symbol(key)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if symbol in out:
            problems.append(f"{key!r} repeats {symbol}")
        out[symbol] = amount
    if problems:
        raise ValueError("; ".join(problems))
    return out


class RiskParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portfolio: dict[str, Decimal] | None = Field(None, description="symbol -> quantity (negative: short)")
    weights: dict[str, float] | None = Field(None, description="symbol -> weight, normalised to gross 1")
    notional: Decimal | None = Field(None, gt=0, le=MAX_AMOUNT, description="weight mode: the book's value")
    benchmark: str | None = None
    interval: str = "1d"
    lookback_days: float | None = Field(None, gt=0, le=3660)
    horizon: int = Field(1, ge=1, le=250, description="VaR horizon in bars of the interval")
    confidence_levels: list[float] = Field(default_factory=lambda: [0.95, 0.99], min_length=1, max_length=5)
    min_candles: int = Field(30, ge=5, le=10_000, description="closed candles a position needs (plus one)")
    risk_free_rate: float = Field(0.0, ge=-0.5, le=1.0, description="annual")
    end: int | None = Field(None, ge=0, le=MAX_TIME_MS, description="as-of time, epoch ms (default: now)")

    _keys = field_validator("portfolio", "weights", mode="before")(_symbol_keys)
    _interval = field_validator("interval", mode="before")(check_interval)

    @field_validator("benchmark", mode="before")
    @classmethod
    def _benchmark(cls, value: Any) -> Any:
        return None if value is None else check_symbol(value)

    @field_validator("portfolio")
    @classmethod
    def _quantities(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        if value is not None:
            bad = [s for s, q in value.items() if not q.is_finite() or q == 0 or abs(q) > MAX_AMOUNT]
            if bad:
                raise ValueError(f"quantities must be finite, non-zero and at most {MAX_AMOUNT:.0e} in size: "
                                 f"{', '.join(bad)}")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            bad = [s for s, w in value.items() if not math.isfinite(w) or w == 0 or abs(w) > MAX_AMOUNT]
            if bad:
                raise ValueError(f"weights must be finite, non-zero and at most {MAX_AMOUNT:.0e} in size: "
                                 f"{', '.join(bad)}")
        return value

    @field_validator("confidence_levels")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        bad = [c for c in value if not 0.5 <= c < 1.0]
        if bad:
            raise ValueError(f"confidence levels must be in [0.5, 1): {bad}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _one_book(self) -> RiskParams:
        books = [b for b in (self.portfolio, self.weights) if b is not None]
        if len(books) != 1:
            raise ValueError("give either portfolio (quantities) or weights, not both" if books else
                             "give portfolio (symbol -> quantity) or weights (symbol -> weight)")
        if not books[0]:
            raise ValueError("the book is empty")
        if len(books[0]) > MAX_POSITIONS:
            raise ValueError(f"at most {MAX_POSITIONS} positions")
        if self.notional is not None and self.weights is None:
            raise ValueError("notional goes with weights (a portfolio of quantities has its own value)")
        if self.lookback_days is not None and self.lookback_days * DAY_MS / INTERVAL_MS[self.interval] > MAX_BARS:
            raise ValueError(f"lookback_days covers more than {MAX_BARS} {self.interval} candles")
        return self

    def lookback(self) -> float:
        if self.lookback_days is not None:
            return self.lookback_days
        return min(DEFAULT_LOOKBACK_DAYS, DEFAULT_LOOKBACK_BARS * INTERVAL_MS[self.interval] / DAY_MS)


ANALYSIS_TYPES = ("technical", "ai")
MAX_LIMIT = 5000


class AnalysisParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str
    analysis_type: str = "technical"
    interval: str = "1d"
    limit: int = Field(500, ge=1, le=MAX_LIMIT, description="closed candles to analyse, the newest")
    end: int | None = Field(None, ge=0, le=MAX_TIME_MS, description="analyse as of this time, epoch ms (default: now)")

    _symbol = field_validator("symbol", mode="before")(check_symbol)
    _interval = field_validator("interval", mode="before")(check_interval)

    @field_validator("analysis_type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value
