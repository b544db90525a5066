"""OpenAI's Chat Completions wire formats: the completion, the stream chunks, the models list, the errors.

Shapes and messages follow api.openai.com's as observed (``chatcmpl-`` ids, ``usage`` with its details,
``{"error": {"message", "type", "param", "code"}}`` bodies with the same texts for the same cases).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

FINGERPRINT = "fp_tacoresim01"
_counter = itertools.count(1)


def completion_id(seed: str) -> str:
    """``chatcmpl-`` + 29 characters: derived from the request and a counter (unique, reproducible order)."""
    digest = hashlib.sha256(f"{seed}:{next(_counter)}".encode()).hexdigest()
    return "chatcmpl-" + digest[:29]


def tokens(text: str) -> int:
    """A token estimate (about four characters per token, as OpenAI's rule of thumb)."""
    return max(1, (len(text) + 3) // 4) if text else 0


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def completion(cid: str, model: str, contents: list[tuple[str, str]], prompt_tokens: int) -> dict[str, Any]:
    """A ``chat.completion``; ``contents``: (content, finish_reason) per choice."""
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": content, "refusal": None,
                                             "annotations": []},
                     "logprobs": None, "finish_reason": finish} for i, (content, finish) in enumerate(contents)],
        "usage": usage(prompt_tokens, sum(tokens(c) for c, _ in contents)),
        "service_tier": "default", "system_fingerprint": FINGERPRINT,
    }


def chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None,
          index: int = 0) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": FINGERPRINT,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def usage_chunk(cid: str, model: str, created: int, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The last chunk when ``stream_options.include_usage`` is set: no choices, the usage."""
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": FINGERPRINT, "choices": [],
            "usage": usage(prompt_tokens, completion_tokens)}


def model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "tacore"}


def error(message: str, type_: str = "invalid_request_error", param: str | None = None,
          code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def no_key() -> dict[str, Any]:
    return error("You didn't provide an API key. You need to provide your API key in an Authorization header "
                 "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
                 "username) if you're accessing the API from your browser and are prompted for a username and "
                 "password. You can obtain an API key from https://platform.openai.com/account/api-keys.")


def wrong_key(given: str) -> dict[str, Any]:
    masked = (given[:3] + "*" * max(0, len(given) - 7) + given[-4:]) if len(given) > 8 else "*" * len(given)
    return error(f"Incorrect API key provided: {masked}. You can find your API key at "
                 "https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def model_not_found(model: str) -> dict[str, Any]:
    return error(f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found")


def rate_limited(model: str, retry_after_s: float) -> dict[str, Any]:
    return error(f"Rate limit reached for {model} in organization org-tacoresim on requests per min (RPM): "
                 f"Limit 3, Used 3, Requested 1. Please try again in {retry_after_s:g}s. Visit "
                 "https://platform.openai.com/account/rate-limits to learn more.", type_="requests",
                 code="rate_limit_exceeded")


def server_error() -> dict[str, Any]:
    return error("The server had an error while processing your request. Sorry about that!", type_="server_error")


def overloaded() -> dict[str, Any]:
    return error("The engine is currently overloaded, please try again later.", type_="server_error")


def bad_json_body() -> dict[str, Any]:
    return error("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                 "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
                 "JSON. If you have trouble figuring out how to fix this, please contact us through our help "
                 "center at help.openai.com.)")
