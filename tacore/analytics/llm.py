"""Asking an OpenAI-compatible Chat Completions endpoint for an analysis, with bounded retries.

Any endpoint that speaks the Chat Completions API works (OpenAI, vLLM, Ollama, llama.cpp, TACore's
``tacore llm-sim``), through the ``openai`` client with its own retries off: the loop here decides.

- 429: wait the endpoint's ``Retry-After`` (at most ``LLM_MAX_RETRY_WAIT_S`` and never past the request's
  deadline), then retry; 5xx, a timeout or a lost connection: retry after a short backoff. At most
  ``LLM_MAX_RETRIES`` retries, then ``UNAVAILABLE`` naming the last cause.
- 401/403 (the key), 404 (the model or URL), other 4xx: ``UNAVAILABLE`` at once, saying what to check.
- Output that is not the JSON object asked for is sent back once with what was wrong
  (``llm_prompt.repair_messages``); a second invalid reply is given up on: the caller answers with the
  technical verdict and a flag.

The API key is a ``SecretStr`` in the settings, sent only in the ``Authorization`` header, never logged,
and scrubbed from any error text the endpoint echoes back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from tacore.analytics.llm_prompt import AIAnalysis, InvalidAnswer, parse_answer, repair_messages
from tacore.errors import Cancelled, Unavailable
from tacore.settings import Settings

log = logging.getLogger("tacore.analytics.llm")

#: a request whose deadline leaves less than this is not sent
MIN_ATTEMPT_S = 0.5
BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str | None
    model: str | None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    max_retries: int = 2
    max_retry_wait_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else None
        return cls(settings.llm_base_url, settings.llm_model, key, settings.llm_timeout_s, settings.llm_max_retries,
                   settings.llm_max_retry_wait_s)

    def missing(self) -> list[str]:
        return [name for name, value in (("LLM_BASE_URL", self.base_url), ("LLM_MODEL", self.model)) if not value]


@dataclass
class LLMOutcome:
    """An analysis, or why there is none (``invalid``: the replies that did not validate)."""

    analysis: AIAnalysis | None
    model: str
    attempts: int = 0
    invalid: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    latency_ms: float = 0.0


class _Retry(Exception):
    """A failure worth another attempt, after ``wait_s`` (None: the backoff's next step)."""

    def __init__(self, cause: str, wait_s: float | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.wait_s = wait_s


class LLMAnalyst:
    """One endpoint and model; ``analyse`` is safe to call from one thread at a time per instance."""

    def __init__(self, config: LLMConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self._client: openai.OpenAI | None = None

    def _scrub(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "***") if key else text

    def prepare(self) -> None:
        """Build the HTTP client now (when configured), so the first analysis does not pay for it."""
        if not self.config.missing():
            self._openai()

    def _openai(self) -> openai.OpenAI:
        if self._client is None:
            self._client = openai.OpenAI(base_url=self.config.base_url, api_key=self.config.api_key or "unset",
                                         timeout=self.config.timeout_s, max_retries=0)
        return self._client

    def require_configured(self) -> None:
        """``Unavailable`` naming the settings to set when the endpoint or model is not configured."""
        missing = self.config.missing()
        if missing:
            raise Unavailable(f"AI analysis is not configured: set {' and '.join(missing)} (and LLM_API_KEY if the "
                              "endpoint needs a key) to an OpenAI-compatible Chat Completions endpoint, e.g. "
                              "`tacore llm-sim`",
                              details=[{"setting": name, "message": "not set"} for name in missing])

    def analyse(self, messages: list[dict[str, str]], deadline: float | None = None, *,
                cancelled: Callable[[float], bool] | None = None) -> LLMOutcome:
        """Ask until a valid answer, one repair round for invalid output; raises ``Unavailable``.
        ``cancelled(s)`` waits up to ``s`` seconds between retries and says whether the call was cancelled
        meanwhile (the worker's ``ctx.cancelled.wait``): then ``Cancelled``, no further attempt."""
        self.require_configured()
        started = time.monotonic()
        outcome = LLMOutcome(None, str(self.config.model))
        conversation = messages
        for _ in range(2):  # the first answer and one repair
            content, usage = self._complete(conversation, deadline, outcome, cancelled)
            outcome.usage = usage
            try:
                outcome.analysis = parse_answer(content)
                break
            except InvalidAnswer as exc:
                problem = self._scrub(str(exc))
                outcome.invalid.append(problem)
                log.warning("LLM %s answered invalid output (%s)", self.config.model, problem)
                conversation = repair_messages(messages, content, problem)
        outcome.latency_ms = round((time.monotonic() - started) * 1000.0, 3)
        log.info("LLM analysis by %s: %d attempt(s), %d invalid, %.0f ms", self.config.model, outcome.attempts,
                 len(outcome.invalid), outcome.latency_ms)
        return outcome

    def _complete(self, messages: list[dict[str, str]], deadline: float | None, outcome: LLMOutcome,
                  cancelled: Callable[[float], bool] | None) -> tuple[str | None, dict[str, Any] | None]:
        """One answer's content, retrying transient failures within the budget."""
        retries = 0
        while True:
            timeout = self.config.timeout_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left < MIN_ATTEMPT_S:
                    raise Unavailable(f"LLM endpoint: no time left before the request's deadline after "
                                      f"{outcome.attempts} attempt(s)")
                timeout = min(timeout, left - 0.1)
            outcome.attempts += 1
            try:
                return self._attempt(messages, timeout)
            except _Retry as retry:
                if retries >= self.config.max_retries:
                    raise Unavailable(f"LLM endpoint {self.config.base_url}: {retry.cause}; gave up after "
                                      f"{outcome.attempts} attempt(s)") from None
                wait = retry.wait_s if retry.wait_s is not None else BACKOFF_S[min(retries, len(BACKOFF_S) - 1)]
                if wait > self.config.max_retry_wait_s:
                    raise Unavailable(f"LLM endpoint {self.config.base_url}: {retry.cause}; asked to wait "
                                      f"{wait:.1f} s, over LLM_MAX_RETRY_WAIT_S "
                                      f"({self.config.max_retry_wait_s:g} s)") from None
                if deadline is not None and time.monotonic() + wait + MIN_ATTEMPT_S > deadline:
                    raise Unavailable(f"LLM endpoint {self.config.base_url}: {retry.cause}; no time left before "
                                      f"the request's deadline for another attempt (after {outcome.attempts})"
                                      ) from None
                retries += 1
                log.warning("LLM endpoint: %s; retry %d in %.2f s", retry.cause, retries, wait)
                if cancelled is None:
                    self._sleep(wait)
                elif cancelled(wait):
                    raise Cancelled(f"cancelled while waiting to retry the LLM endpoint ({retry.cause})") from None

    def _attempt(self, messages: list[dict[str, str]], timeout: float) -> tuple[str | None, dict[str, Any] | None]:
        client = self._openai().with_options(timeout=timeout)
        try:
            completion = client.chat.completions.create(
                model=str(self.config.model), messages=cast("list[ChatCompletionMessageParam]", messages),
                response_format={"type": "json_object"}, temperature=0)
        except openai.RateLimitError as exc:
            raise _Retry(f"rate limited (429): {self._message(exc)}", _retry_after(exc)) from None
        except openai.InternalServerError as exc:
            raise _Retry(f"server error ({exc.status_code}): {self._message(exc)}") from None
        except openai.APITimeoutError:
            raise _Retry(f"no answer within {timeout:.1f} s (LLM_TIMEOUT_S)") from None
        except openai.APIConnectionError as exc:
            raise _Retry(f"cannot connect: {self._scrub(str(exc.__cause__ or exc))}") from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise Unavailable(f"LLM endpoint refused the key ({exc.status_code}): check LLM_API_KEY; "
                              f"{self._message(exc)}") from None
        except openai.NotFoundError as exc:
            raise Unavailable(f"LLM endpoint answered 404: check LLM_MODEL ({self.config.model}) and LLM_BASE_URL "
                              f"({self.config.base_url}); {self._message(exc)}") from None
        except openai.APIStatusError as exc:
            raise Unavailable(f"LLM endpoint rejected the request ({exc.status_code}): {self._message(exc)}") from None
        choice = completion.choices[0] if completion.choices else None
        usage = None
        if completion.usage is not None:
            u = completion.usage
            usage = {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                     "total_tokens": u.total_tokens}
        if choice is None:
            return None, usage
        content = choice.message.content
        if choice.finish_reason == "length":
            content = (content or "") + "\u2026"  # cut off: not the complete object, whatever it parses as
        return content, usage

    def _message(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        if isinstance(body, dict):
            inner = body.get("error") if isinstance(body.get("error"), dict) else body
            message = inner.get("message") if isinstance(inner, dict) else None
            if message:
                return self._scrub(str(message))
        return self._scrub(str(exc))


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """Seconds the endpoint asked us to wait (``retry-after-ms`` or ``retry-after``)."""
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is not None:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                continue
    return None
