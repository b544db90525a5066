"""``ai_model_node``'s ``llm`` operation against TACore's OpenAI-compatible LLM simulator (a real HTTP server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tacore.errors import Unavailable
from tacore.flows.nodes import LocalContext, run_node
from tacore.llm_sim import LLMSimulator

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMSimulator]:
    with LLMSimulator(api_key=KEY) as running:
        monkeypatch.setenv("LLM_BASE_URL", running.base_url)
        monkeypatch.setenv("LLM_API_KEY", KEY)
        monkeypatch.setenv("LLM_MODEL", "tacore-sim-1")
        yield running


def test_the_llm_operation_answers_with_the_models_text(sim: LLMSimulator) -> None:
    ctx = LocalContext(flow_id="f", cycle=1, node_id="ask")
    out = run_node("ai_model_node", {"operation": "llm", "prompt": "Buy, hold or sell?"},
                   {"input": {"last_price": 101.5}}, ctx)["output"]
    assert out["operation"] == "llm" and out["model"] == "tacore-sim-1" and out["text"]
    assert ctx.logs and "answered" in ctx.logs[0]["message"]


def test_the_llm_operation_without_an_endpoint_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.delenv("LLM_MODEL", raising=False)
    with pytest.raises(Unavailable, match="LLM_BASE_URL"):
        run_node("ai_model_node", {"operation": "llm", "prompt": "hi"}, {"input": 1}, LocalContext())
