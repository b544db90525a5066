"""analyze.stock: technical analysis from stored candles, or an LLM's analysis fed with it.

Served by the data agent (it owns the store), from its own worker so that an ``ai`` call waiting on the
LLM endpoint never holds up ``kline.*`` or ``get.market_data``. ``technical`` is TA-Lib indicators,
verdicts and a buy/hold/sell signal (``tacore.analytics.technical``); ``ai`` asks the configured
OpenAI-compatible endpoint (``tacore.analytics.llm``) and falls back to the technical verdict, flagged,
when the model's output stays invalid.
"""

from __future__ import annotations

import time
from typing import Any

from tacore.analytics.candles import CandleReader, Ohlcv, load_ohlcv
from tacore.analytics.llm import LLMAnalyst, LLMConfig
from tacore.analytics.llm_prompt import RECENT_CANDLES, build_messages
from tacore.analytics.params import ANALYSIS_TYPES, AnalysisParams
from tacore.analytics.technical import technical_analysis
from tacore.errors import InvalidParams, Unavailable
from tacore.settings import Settings
from tacore.store.klines import StorageError
from workers.registry import CallContext, MethodRegistry


def _recent_rows(candles: Ohlcv) -> list[list[float]]:
    start = max(0, candles.count - RECENT_CANDLES)
    return [[int(candles.open_time[i]), float(candles.open[i]), float(candles.high[i]), float(candles.low[i]),
             float(candles.close[i]), float(candles.volume[i])] for i in range(start, candles.count)]


def ai_analysis(analyst: LLMAnalyst, candles: Ohlcv, technical: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """The ``ai`` reply: the model's analysis, or the technical verdict flagged as a fallback (too little
    history: the technical answer saying so, without asking the model)."""
    if technical["status"] == "insufficient_history":
        return {**technical, "analysis_type": "ai"}
    reply: dict[str, Any] = {"symbol": technical["symbol"], "analysis_type": "ai", "interval": technical["interval"],
                             "candles": technical["candles"]}
    ctx.check()  # the candles took a while: do not ask the model for a call already answered
    outcome = analyst.analyse(build_messages(technical, _recent_rows(candles)), ctx.deadline,
                              cancelled=ctx.cancelled.wait)
    signal = technical["signal"]
    llm = {"model": outcome.model, "attempts": outcome.attempts, "invalid_replies": outcome.invalid,
           "latency_ms": outcome.latency_ms, "usage": outcome.usage}
    if outcome.analysis is not None:
        ai = outcome.analysis.model_dump()
        recommendation = {"action": ai["action"], "confidence": ai["confidence"], "target_price": ai["target_price"],
                          "source": "ai"}
        reply.update(status="ok", recommendation=recommendation, ai=ai, fallback=False, fallback_reason=None)
    else:
        reply.update(status="fallback", ai=None, fallback=True,
                     recommendation={"action": signal["action"], "confidence": None, "target_price": None,
                                     "source": "technical"},
                     fallback_reason="the model's output was invalid twice: " + "; ".join(outcome.invalid))
    reply.update(llm=llm, technical={k: v for k, v in technical.items() if k != "analysis_type"})
    return reply


def build_registry(reader: CandleReader, settings: Settings) -> MethodRegistry:
    registry = MethodRegistry()
    analyst = LLMAnalyst(LLMConfig.from_settings(settings))
    analyst.prepare()

    @registry.method("analyze.stock", idempotent=True)
    def analyze(params: AnalysisParams, ctx: CallContext) -> dict[str, Any]:
        """Technical analysis (TA-Lib indicators, verdicts, signal) or an LLM's analysis of one symbol."""
        if params.analysis_type not in ANALYSIS_TYPES:
            known = ", ".join(ANALYSIS_TYPES)
            raise InvalidParams(f"unknown analysis_type {params.analysis_type!r}; known: {known}",
                                details=[{"field": "analysis_type", "message": f"must be one of: {known}",
                                          "known": list(ANALYSIS_TYPES)}])
        if params.analysis_type == "ai":
            analyst.require_configured()
        end = params.end if params.end is not None else int(time.time() * 1000)
        try:
            candles = load_ohlcv(reader, params.symbol, params.interval, params.limit, end)
        except StorageError as exc:
            raise Unavailable(f"candle storage is down: {exc}") from None
        technical = technical_analysis(candles, requested=params.limit)
        if params.analysis_type == "technical":
            return technical
        return ai_analysis(analyst, candles, technical, ctx)

    return registry
