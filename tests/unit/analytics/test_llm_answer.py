"""The model's answer: what validates, what is invalid and why; the prompt carries the summary readably."""

from __future__ import annotations

import json

import pytest

from tacore.analytics.llm import LLMAnalyst, LLMConfig
from tacore.analytics.llm_prompt import (
    InvalidAnswer,
    build_messages,
    parse_answer,
    read_summary,
    repair_messages,
)
from tacore.errors import Unavailable
from tacore.llm_sim.answers import analysis_from_summary

GOOD = {"action": "Buy", "confidence": 0.72, "target_price": 123.4, "risk_notes": ["thin volume"],
        "rationale": "Uptrend with rising OBV."}
TECHNICAL = {
    "symbol": "BTCUSDT", "interval": "1h", "price": {"close": 100.0}, "indicators": {"atr_14": 2.5, "rsi_14": 61.0},
    "levels": {"support": [{"price": 97.0}], "resistance": [{"price": 104.0}, {"price": 108.0}]},
    "verdicts": {"trend": {"strength": "weak"}, "volatility": {"regime": "high", "atr_pct": 2.5},
                 "momentum": {"overbought": False}},
    "signal": {"action": "sell", "score": -40, "reasons": [{"detail": "close below SMA 200"}]},
}


def test_a_valid_answer_parses_and_its_action_is_normalised() -> None:
    answer = parse_answer(json.dumps(GOOD))
    assert answer.action == "buy" and answer.confidence == 0.72 and answer.target_price == 123.4
    extra = parse_answer(json.dumps({**GOOD, "target_price": None, "horizon": "2 weeks"}))
    assert extra.target_price is None  # unknown keys ignored, a null target allowed


@pytest.mark.parametrize(("content", "says"), [
    ("", "empty"),
    ("Sure! {\"action\": \"buy\"", "not JSON"),
    ("[1, 2]", "not an object"),
    (json.dumps({**GOOD, "action": "strong buy"}), "action"),
    (json.dumps({**GOOD, "confidence": 72}), "confidence"),
    (json.dumps({**GOOD, "target_price": -5}), "target_price"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "rationale"}), "rationale"),
    (json.dumps({**GOOD, "rationale": ""}), "rationale"),
])
def test_invalid_answers_are_rejected_saying_what_is_wrong(content: str, says: str) -> None:
    with pytest.raises(InvalidAnswer) as err:
        parse_answer(content)
    assert says in str(err.value)


def test_the_prompt_carries_the_summary_and_recent_candles_in_json() -> None:
    rows = [[i * 60_000, 1.0, 2.0, 0.5, 1.5, 10.0] for i in range(50)]
    messages = build_messages(TECHNICAL, rows)
    assert messages[0]["role"] == "system" and "JSON" in messages[0]["content"]
    summary = read_summary(messages[1]["content"])
    assert summary is not None and summary["signal"] == {"action": "sell", "score": -40,
                                                         "reasons": ["close below SMA 200"]}
    assert summary["support"] == [97.0] and summary["resistance"] == [104.0, 108.0]
    candles = json.loads(messages[1]["content"].split("```json\n")[2].split("\n```")[0])
    assert len(candles) == 30 and candles[-1][0] == 49 * 60_000  # the 30 most recent, oldest first
    repaired = repair_messages(messages, "oops", "the reply is not JSON")
    assert [m["role"] for m in repaired] == ["system", "user", "assistant", "user"]
    assert "the reply is not JSON" in repaired[-1]["content"]
    assert read_summary("no summary here") is None


def test_the_simulators_answer_follows_the_summary_deterministically() -> None:
    answer = analysis_from_summary(read_summary(build_messages(TECHNICAL, [])[1]["content"]) or {})
    assert answer == analysis_from_summary(read_summary(build_messages(TECHNICAL, [])[1]["content"]) or {})
    assert answer["action"] == "sell" and answer["confidence"] == 0.7 and answer["target_price"] == 97.0
    assert "volatility is high: ATR 2.5 % of price" in answer["risk_notes"]
    assert "a close above resistance 104.0 would void the setup" in answer["risk_notes"]
    assert parse_answer(json.dumps(answer)).action == "sell"  # what it says validates


def test_unconfigured_endpoint_is_unavailable_naming_the_settings() -> None:
    analyst = LLMAnalyst(LLMConfig(base_url=None, model=None, api_key="sk-secret"))
    with pytest.raises(Unavailable) as err:
        analyst.analyse(build_messages(TECHNICAL, []))
    assert "LLM_BASE_URL and LLM_MODEL" in err.value.message
    assert [d["setting"] for d in err.value.details] == ["LLM_BASE_URL", "LLM_MODEL"]
    assert "sk-secret" not in repr(analyst.config)
