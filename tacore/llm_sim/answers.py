"""The simulator's answers: deterministic, read from the technical summary in the prompt.

An ``analyze.stock`` prompt (``tacore.analytics.llm_prompt``) gets the analysis a careful reader of that
summary would give: the technical signal's action, a confidence from its score, a target at the nearest
level in that direction (two ATRs when there is none), risk notes from the verdicts, the top reasons as
rationale. Any other prompt gets a fixed answer naming what it lacked. Same prompt, same answer.
"""

from __future__ import annotations

import json
from typing import Any

from tacore.analytics.llm_prompt import read_summary


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def analysis_from_summary(summary: dict[str, Any]) -> dict[str, Any]:
    signal = summary.get("signal") or {}
    action = signal.get("action") if signal.get("action") in ("buy", "hold", "sell") else "hold"
    score = _number(signal.get("score")) or 0.0
    price = _number((summary.get("price") or {}).get("close"))
    indicators = summary.get("indicators") or {}
    atr = _number(indicators.get("atr_14"))
    support = [p for p in (summary.get("support") or []) if _number(p)]
    resistance = [p for p in (summary.get("resistance") or []) if _number(p)]
    target = None
    if price is not None and action == "buy":
        target = resistance[0] if resistance else (price + 2 * atr if atr else None)
    elif price is not None and action == "sell":
        target = support[0] if support else (price - 2 * atr if atr else None)
    verdicts = summary.get("verdicts") or {}
    notes = []
    volatility = verdicts.get("volatility") or {}
    if volatility.get("regime") == "high":
        notes.append(f"volatility is high: ATR {volatility.get('atr_pct')} % of price")
    if volatility.get("squeeze"):
        notes.append("Bollinger squeeze: a sharp move may follow")
    momentum = verdicts.get("momentum") or {}
    if momentum.get("overbought"):
        notes.append("momentum is overbought")
    if momentum.get("oversold"):
        notes.append("momentum is oversold")
    trend = verdicts.get("trend") or {}
    if trend.get("strength") == "weak":
        notes.append("the trend is weak (ADX below 20)")
    if support and action == "buy":
        notes.append(f"a close below support {support[0]} would void the setup")
    if resistance and action == "sell":
        notes.append(f"a close above resistance {resistance[0]} would void the setup")
    reasons = [str(r) for r in (signal.get("reasons") or [])][:3]
    rationale = (f"Technical score {score:+.0f} on {summary.get('symbol')} {summary.get('interval')}: {action}. "
                 + ("; ".join(reasons) + "." if reasons else "No rule gave points."))
    return {"action": action, "confidence": round(min(1.0, 0.5 + abs(score) / 200.0), 2),
            "target_price": round(target, 8) if target is not None and target > 0 else None,
            "risk_notes": notes, "rationale": rationale}


def answer(messages: list[dict[str, Any]], json_mode: bool) -> str:
    """The assistant's content for ``messages``."""
    for message in reversed(messages):
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        if message.get("role") == "user" and (summary := read_summary(text)) is not None:
            return json.dumps(analysis_from_summary(summary))
    reply = "TACore LLM simulator: the prompt carries no technical summary, so there is nothing to analyse."
    return json.dumps({"answer": reply}) if json_mode else reply


def invalid_json(messages: list[dict[str, Any]]) -> str:
    """Content a sloppy model gives: prose around a broken object."""
    return 'Sure! Here is my analysis: {"action": "buy", "confidence": high, "rationale": "looks good"'


def invalid_schema(messages: list[dict[str, Any]]) -> str:
    return json.dumps({"recommendation": "buy", "certainty": "high"})
