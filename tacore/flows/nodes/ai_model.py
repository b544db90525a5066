"""``ai_model_node``: the document's numeric operations (``rolling_avg`` with ``window`` ...) and ``llm``:
a prompt with the input, answered by the LLM endpoint of the analytics settings (``LLM_BASE_URL``,
``LLM_MODEL``, ``LLM_API_KEY``; ``tacore serve --demo`` runs a simulator)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, model_validator

from tacore.errors import Unavailable
from tacore.flows.nodes.base import NodeBase, NodeConfig, NodeContext, NodeFailed
from tacore.flows.nodes.processor import Operation, apply, result_payload
from tacore.flows.nodes.registry import register_node
from tacore.flows.nodes.values import first_input, series_of


class AIModelConfig(NodeConfig):
    operation: Operation | Literal["llm"] = "rolling_avg"
    window: int = Field(5, ge=1, le=10_000)
    field: str = "close"
    factor: float = 1.0
    value: float = 0.0
    prompt: str | None = Field(None, max_length=20_000)
    system: str | None = Field(None, max_length=20_000)
    max_input_chars: int = Field(8000, ge=100, le=200_000)

    @model_validator(mode="after")
    def _prompt(self) -> AIModelConfig:
        if self.operation == "llm" and not self.prompt:
            raise ValueError("the llm operation needs a prompt")
        return self


@register_node("ai_model_node")
class AIModelNode(NodeBase):
    description = "numeric operations on a series (rolling_avg, ...) or an LLM prompt over the input"
    Config = AIModelConfig
    inputs = ("*",)
    outputs = ("output",)

    def execute(self, ctx: NodeContext, config: AIModelConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        if config.operation != "llm":
            series = series_of(first_input(inputs), config.field)
            result = apply(config.operation, series, config.window, config.factor, config.value)
            return {"output": result_payload(config.operation, result, config.window)}
        return {"output": self._llm(ctx, config, inputs)}

    def _llm(self, ctx: NodeContext, config: AIModelConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        import openai

        from tacore.analytics.llm import LLMConfig
        from tacore.settings import load_settings

        llm = LLMConfig.from_settings(load_settings())
        if llm.missing():
            raise Unavailable(f"the llm operation needs {' and '.join(llm.missing())} set")
        data = json.dumps(inputs, default=str)[:config.max_input_chars]
        messages = [{"role": "system", "content": config.system or "You are a trading assistant. Be brief."},
                    {"role": "user", "content": f"{config.prompt}\n\nInput:\n{data}"}]
        client = openai.OpenAI(base_url=llm.base_url, api_key=llm.api_key or "none",
                               timeout=ctx.timeout_s(llm.timeout_s), max_retries=0)
        try:
            answer = client.chat.completions.create(model=str(llm.model), messages=messages)  # type: ignore[arg-type]
        except openai.APIError as exc:
            raise Unavailable(f"the LLM endpoint failed: {type(exc).__name__}: {exc}") from None
        finally:
            client.close()
        if not answer.choices:
            raise NodeFailed("the LLM answered no choice")
        text = answer.choices[0].message.content or ""
        ctx.log("INFO", f"LLM {llm.model} answered {len(text)} characters")
        return {"operation": "llm", "model": llm.model, "text": text,
                "usage": answer.usage.model_dump() if answer.usage else None}
