"""``notification_node``: a webhook POST with retries; a Telegram bot API ``.../sendMessage`` URL gets the
``{"chat_id", "text"}`` body that API takes."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
from pydantic import Field, field_validator

from tacore.errors import Unavailable
from tacore.flows.nodes.base import NodeBase, NodeConfig, NodeContext, NodeFailed
from tacore.flows.nodes.registry import register_node


class NotificationConfig(NodeConfig):
    url: str = Field(min_length=8, max_length=2000)
    chat_id: str | int | None = None
    #: ``{flow_id}``, ``{cycle}``, ``{node_id}`` and ``{input}`` (the input as JSON) are filled in
    template: str = Field("flow {flow_id} cycle {cycle}: {input}", max_length=4000)
    retries: int = Field(3, ge=0, le=10)
    timeout_s: float = Field(5.0, gt=0, le=60)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL")
        return value


def render(template: str, ctx: NodeContext, inputs: dict[str, Any]) -> str:
    data = inputs.get("input", inputs if len(inputs) != 1 else next(iter(inputs.values())))
    text = json.dumps(data, default=str)
    if len(text) > 3000:
        text = text[:3000] + "…"
    return (template.replace("{flow_id}", ctx.flow_id).replace("{cycle}", str(ctx.cycle))
            .replace("{node_id}", ctx.node_id).replace("{input}", text))


@register_node("notification_node", "webhook_node", "telegram_node")
class NotificationNode(NodeBase):
    description = "POSTs a message to a webhook or a Telegram-bot-API sendMessage URL, with retries"
    Config = NotificationConfig
    inputs = ("*",)
    outputs = ("output",)

    def execute(self, ctx: NodeContext, config: NotificationConfig, inputs: dict[str, Any]) -> dict[str, Any]:
        text = render(config.template, ctx, inputs)
        if config.url.rstrip("/").endswith("/sendMessage"):
            if config.chat_id is None:
                raise NodeFailed("a Telegram sendMessage URL needs chat_id")
            body: dict[str, Any] = {"chat_id": config.chat_id, "text": text}
        else:
            body = {"flow_id": ctx.flow_id, "cycle": ctx.cycle, "node_id": ctx.node_id, "text": text,
                    "input": inputs}
        last = ""
        with httpx.Client(headers=config.headers) as client:
            for attempt in range(1, config.retries + 2):
                ctx.check()
                try:
                    response = client.post(config.url, json=body, timeout=ctx.timeout_s(config.timeout_s))
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code < 300:
                        ctx.log("INFO", f"notified {config.url.split('?')[0][:80]} (HTTP {response.status_code}, "
                                        f"attempt {attempt})")
                        return {"output": {"status_code": response.status_code, "attempts": attempt}}
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                        raise NodeFailed(f"the webhook refused the message: {last}")
                ctx.log("WARNING", f"notification attempt {attempt} failed: {last}")
                if attempt <= config.retries and ctx.wait(min(8.0, 0.25 * 2 ** (attempt - 1)) * random.uniform(0.8,
                                                                                                               1.2)):
                    ctx.check()
        raise Unavailable(f"the webhook did not take the message after {config.retries + 1} attempts: {last}")
