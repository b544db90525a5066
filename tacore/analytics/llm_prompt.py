"""What TACore asks a language model about a symbol, and the answer it must give (validated with pydantic).

The user message carries the technical summary as a fenced JSON block after ``SUMMARY_HEADING`` and the
recent candles as another; TACore's LLM simulator reads the summary from there, so the heading is the
contract between the two. The model must answer one JSON object (``AIAnalysis``); anything else is
invalid output, answered back once with the validation error (``repair_messages``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SUMMARY_HEADING = "Technical summary (JSON):"
CANDLES_HEADING = "Recent candles (JSON rows: open_time, open, high, low, close, volume; oldest first):"
RECENT_CANDLES = 30

SYSTEM_PROMPT = (
    "You are a trading analyst. Judge the symbol from the technical summary and the recent candles you are "
    "given, and answer with one JSON object only, no prose around it, with exactly these keys: "
    '"action" ("buy", "hold" or "sell"), "confidence" (a number from 0 to 1), "target_price" (a positive number '
    'or null), "risk_notes" (a list of short strings) and "rationale" (a short paragraph).'
)


class AIAnalysis(BaseModel):
    """The model's answer."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["buy", "hold", "sell"]
    confidence: float = Field(ge=0.0, le=1.0)
    target_price: float | None = Field(None, gt=0)
    risk_notes: list[str] = Field(default_factory=list, max_length=20)
    rationale: str = Field(min_length=1, max_length=8000)

    @field_validator("action", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class InvalidAnswer(ValueError):
    """The model's content is not the JSON object asked for; the message says what is wrong."""


def parse_answer(content: str | None) -> AIAnalysis:
    if not content or not content.strip():
        raise InvalidAnswer("the reply was empty")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"the reply is not JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, dict):
        raise InvalidAnswer(f"the reply is JSON but not an object (a {type(data).__name__})")
    try:
        return AIAnalysis.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors())
        raise InvalidAnswer(f"the JSON does not match the schema: {problems}") from None


def summary_for_prompt(technical: dict[str, Any]) -> dict[str, Any]:
    """The parts of a technical reply a model needs: price, indicators, levels, verdicts and the signal."""
    signal = technical.get("signal") or {}
    levels = technical.get("levels") or {}
    return {
        "symbol": technical.get("symbol"), "interval": technical.get("interval"),
        "price": technical.get("price"), "indicators": technical.get("indicators"),
        "support": [lv["price"] for lv in levels.get("support", [])],
        "resistance": [lv["price"] for lv in levels.get("resistance", [])],
        "pivot": levels.get("pivot"), "verdicts": technical.get("verdicts"),
        "signal": {"action": signal.get("action"), "score": signal.get("score"),
                   "reasons": [r["detail"] for r in signal.get("reasons", [])]},
    }


def build_messages(technical: dict[str, Any], candles: list[list[float]]) -> list[dict[str, str]]:
    """System and user messages for one analysis (``candles``: the most recent rows, oldest first)."""
    summary = json.dumps(summary_for_prompt(technical), separators=(",", ":"))
    rows = json.dumps(candles[-RECENT_CANDLES:], separators=(",", ":"))
    user = (f"Symbol {technical.get('symbol')}, {technical.get('interval')} candles.\n"
            f"{SUMMARY_HEADING}\n```json\n{summary}\n```\n{CANDLES_HEADING}\n```json\n{rows}\n```\n"
            "Answer with the JSON object only.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def repair_messages(messages: list[dict[str, str]], bad_content: str | None,
                    problem: str) -> list[dict[str, str]]:
    """The conversation again, with the invalid reply and what was wrong with it."""
    return [*messages, {"role": "assistant", "content": bad_content or ""},
            {"role": "user", "content": f"That reply was not valid: {problem}. Answer again with only the JSON "
                                        "object described, with every key."}]


def read_summary(text: str) -> dict[str, Any] | None:
    """The technical summary in a user message built by ``build_messages`` (None when absent)."""
    at = text.find(SUMMARY_HEADING)
    if at < 0:
        return None
    start = text.find("```json", at)
    end = text.find("```", start + 7) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    try:
        data = json.loads(text[start + 7:end])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
