"""The LLM simulator over HTTP: OpenAI's exact formats and errors, each fault, and TACore's client against
them (retries, Retry-After, timeouts, invalid output repaired once, then given up)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tacore.analytics.llm import LLMAnalyst, LLMConfig
from tacore.analytics.llm_prompt import build_messages
from tacore.errors import Cancelled, Unavailable
from tacore.llm_sim import Fault, LLMSimulator
from tests.support.processes import ROOT
from workers.context import CancelSignal

KEY = "sk-test-0123456789abcdef"
TECHNICAL = {"symbol": "ETHUSDT", "interval": "1h", "price": {"close": 2000.0}, "indicators": {"atr_14": 30.0},
             "levels": {"support": [], "resistance": [{"price": 2100.0}]}, "verdicts": {},
             "signal": {"action": "buy", "score": 60, "reasons": [{"detail": "rising stack"}]}}
MESSAGES = build_messages(TECHNICAL, [[0, 1, 2, 0.5, 1.5, 10]])


@pytest.fixture
def sim() -> Iterator[LLMSimulator]:
    with LLMSimulator(api_key=KEY) as running:
        yield running


def _analyst(sim: LLMSimulator, **overrides: float) -> LLMAnalyst:
    options = {"timeout_s": 2.0, "max_retries": 2, "max_retry_wait_s": 5.0, **overrides}
    return LLMAnalyst(LLMConfig(sim.base_url, "tacore-sim-1", KEY, **options))  # type: ignore[arg-type]


def _post(sim: LLMSimulator, body: object, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(sim.base_url + "/chat/completions", content=json.dumps(body), headers=headers, timeout=5)


def test_a_completion_has_openais_shape(sim: LLMSimulator) -> None:
    reply = _post(sim, {"model": "tacore-sim-1", "messages": MESSAGES, "response_format": {"type": "json_object"}})
    assert reply.status_code == 200 and reply.headers["x-request-id"].startswith("req_")
    body = reply.json()
    assert set(body) == {"id", "object", "created", "model", "choices", "usage", "service_tier", "system_fingerprint"}
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert json.loads(choice["message"]["content"])["action"] == "buy"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    models = httpx.get(sim.base_url + "/models", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert models == {"object": "list", "data": [{"id": "tacore-sim-1", "object": "model", "created": 1_700_000_000,
                                                  "owned_by": "tacore"}]}


@pytest.mark.parametrize(("body", "key", "status", "code", "says"), [
    ({"model": "tacore-sim-1", "messages": MESSAGES}, None, 401, None, "You didn't provide an API key"),
    ({"model": "tacore-sim-1", "messages": MESSAGES}, "sk-wrong-key-9999", 401, "invalid_api_key",
     "Incorrect API key provided: sk-**********9999."),
    ({"model": "gpt-nope", "messages": MESSAGES}, KEY, 404, "model_not_found", "The model `gpt-nope` does not exist"),
    ({"model": "tacore-sim-1"}, KEY, 400, "missing_required_parameter", "Missing required parameter: 'messages'."),
    ({"model": "tacore-sim-1", "messages": []}, KEY, 400, "empty_array", "empty array"),
    ({"model": "tacore-sim-1", "messages": [{"role": "robot", "content": "x"}]}, KEY, 400, "invalid_value",
     "Invalid value: 'robot'"),
    ({"model": "tacore-sim-1", "messages": [{"role": "user", "content": "hello"}],
      "response_format": {"type": "json_object"}}, KEY, 400, None, "must contain the word 'json'"),
])
def test_refusals_use_openais_status_and_error_body(sim: LLMSimulator, body: object, key: str | None, status: int,
                                                    code: str | None, says: str) -> None:
    reply = _post(sim, body, key)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code and says in error["message"]
    assert KEY not in reply.text


def test_streaming_sends_chunks_then_usage_then_done(sim: LLMSimulator) -> None:
    client = openai.OpenAI(base_url=sim.base_url, api_key=KEY, max_retries=0)
    chunks = list(client.chat.completions.create(model="tacore-sim-1", messages=MESSAGES,  # type: ignore[arg-type]
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text)["action"] == "buy"
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].usage is not None
    raw = httpx.post(sim.base_url + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                     json={"model": "tacore-sim-1", "messages": MESSAGES, "stream": True}).text
    assert raw.rstrip().endswith("data: [DONE]")


def test_rate_limit_is_retried_after_the_endpoints_retry_after(sim: LLMSimulator) -> None:
    sim.add_fault(Fault(kind="rate_limit", count=2, retry_after_s=0.3))
    raw = _post(sim, {"model": "tacore-sim-1", "messages": MESSAGES})
    assert raw.status_code == 429 and raw.headers["retry-after"] == "0.3" and raw.headers["retry-after-ms"] == "300"
    assert raw.json()["error"]["code"] == "rate_limit_exceeded"
    started = time.monotonic()
    outcome = _analyst(sim).analyse(MESSAGES)
    assert outcome.analysis is not None and outcome.attempts == 2 and time.monotonic() - started >= 0.3


def test_a_retry_after_longer_than_allowed_is_unavailable_at_once(sim: LLMSimulator) -> None:
    sim.add_fault(Fault(kind="rate_limit", count=1, retry_after_s=60))
    started = time.monotonic()
    with pytest.raises(Unavailable) as err:
        _analyst(sim, max_retry_wait_s=5).analyse(MESSAGES)
    assert "429" in err.value.message and "wait 60.0 s" in err.value.message and time.monotonic() - started < 5


@pytest.mark.parametrize(("kind", "status"), [("server_error", "500"), ("unavailable", "503")])
def test_server_errors_are_retried_then_unavailable_with_the_cause(sim: LLMSimulator, kind: str, status: str) -> None:
    sim.add_fault(Fault(kind=kind, count=1))  # type: ignore[arg-type]
    assert _analyst(sim).analyse(MESSAGES).attempts == 2
    sim.add_fault(Fault(kind=kind, count=-1))  # type: ignore[arg-type]
    with pytest.raises(Unavailable) as err:
        _analyst(sim, max_retries=1).analyse(MESSAGES)
    assert f"server error ({status})" in err.value.message and "after 2 attempt(s)" in err.value.message
    assert sim.stats()["by_status"][status] == 3


def test_a_slow_endpoint_times_out_and_is_retried(sim: LLMSimulator) -> None:
    sim.add_fault(Fault(kind="slow", count=1, delay_s=1.5))
    outcome = _analyst(sim, timeout_s=0.6).analyse(MESSAGES)
    assert outcome.analysis is not None and outcome.attempts == 2
    sim.add_fault(Fault(kind="slow", count=-1, delay_s=1.5))
    with pytest.raises(Unavailable) as err:
        _analyst(sim, timeout_s=0.6, max_retries=1).analyse(MESSAGES)
    assert "no answer within 0.6 s" in err.value.message


def test_the_requests_deadline_bounds_every_wait(sim: LLMSimulator) -> None:
    sim.add_fault(Fault(kind="slow", count=-1, delay_s=3))
    started = time.monotonic()
    with pytest.raises(Unavailable) as err:
        _analyst(sim, timeout_s=30, max_retries=5).analyse(MESSAGES, deadline=time.monotonic() + 1.5)
    assert time.monotonic() - started < 3.5 and "deadline" in err.value.message


@pytest.mark.parametrize("kind", ["invalid_json", "invalid_schema"])
def test_invalid_output_is_repaired_once_then_given_up(sim: LLMSimulator, kind: str) -> None:
    sim.add_fault(Fault(kind=kind, count=1))  # type: ignore[arg-type]
    repaired = _analyst(sim).analyse(MESSAGES)
    assert repaired.analysis is not None and repaired.attempts == 2 and len(repaired.invalid) == 1
    last = sim.stats()["last_request"]["messages"]
    assert last[-2]["role"] == "assistant" and "not valid" in last[-1]["content"]  # the error was sent back
    sim.add_fault(Fault(kind=kind, count=-1))  # type: ignore[arg-type]
    given_up = _analyst(sim).analyse(MESSAGES)
    assert given_up.analysis is None and given_up.attempts == 2 and len(given_up.invalid) == 2


def test_a_wrong_key_or_model_is_unavailable_without_retrying(sim: LLMSimulator) -> None:
    with pytest.raises(Unavailable) as err:
        LLMAnalyst(LLMConfig(sim.base_url, "tacore-sim-1", "sk-wrong-0000")).analyse(MESSAGES)
    assert "check LLM_API_KEY" in err.value.message and "sk-wrong-0000" not in err.value.message
    with pytest.raises(Unavailable) as err:
        LLMAnalyst(LLMConfig(sim.base_url, "no-such-model", KEY)).analyse(MESSAGES)
    assert "check LLM_MODEL" in err.value.message
    assert sim.stats()["requests"] == 2


def test_an_endpoint_that_is_down_is_unavailable_naming_the_connection(sim: LLMSimulator) -> None:
    url = sim.base_url
    sim.stop()
    with pytest.raises(Unavailable) as err:
        LLMAnalyst(LLMConfig(url, "tacore-sim-1", KEY, max_retries=1)).analyse(MESSAGES)
    assert "cannot connect" in err.value.message and "2 attempt(s)" in err.value.message


def test_the_cli_serves_with_queued_faults_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tacore", "llm-sim", "--port", "0", "--api-key", KEY,
                             "--fault", "unavailable:1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["models"] == ["tacore-sim-1"] and info["auth"] is True
        client = openai.OpenAI(base_url=info["base_url"], api_key=KEY, max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="tacore-sim-1", messages=MESSAGES)  # type: ignore[arg-type]
        answer = client.chat.completions.create(model="tacore-sim-1", messages=MESSAGES)  # type: ignore[arg-type]
        assert json.loads(answer.choices[0].message.content or "")["action"] == "buy"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_a_cancelled_call_stops_retrying_at_once(sim: LLMSimulator) -> None:
    sim.add_fault(Fault(kind="unavailable", count=-1))
    signal_ = CancelSignal()
    threading.Timer(0.1, signal_.set, args=("client", "not needed any more")).start()
    started = time.monotonic()
    with pytest.raises(Cancelled) as err:
        _analyst(sim, max_retries=5).analyse(MESSAGES, cancelled=signal_.wait)
    assert "cancelled while waiting to retry" in err.value.message and "503" in err.value.message
    assert time.monotonic() - started < 2 and sim.stats()["by_status"]["503"] <= 2
