"""The simulator's HTTP server (Starlette on uvicorn), its test handle and the ``tacore llm-sim`` command.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /v1/models/{id}``; control under
``/_sim/``: ``GET stats``, ``POST faults`` (a ``Fault`` as JSON), ``DELETE faults``. With ``--api-key``
every ``/v1`` call needs ``Authorization: Bearer <key>`` (401 in OpenAI's words otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tacore.llm_sim import answers
from tacore.llm_sim import openai_format as fmt
from tacore.llm_sim.faults import Fault, FaultKind, FaultPlan

DEFAULT_MODEL = "tacore-sim-1"
ROLES = ("system", "assistant", "user", "function", "tool", "developer")


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


class ChatCompletionsApi:
    """The OpenAI-compatible routes and the control routes over one fault plan."""

    def __init__(self, *, api_key: str | None, models: Sequence[str], faults: FaultPlan, latency_s: float) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.faults = faults
        self.latency_s = latency_s
        self.requests = 0
        self.by_status: dict[str, int] = {}
        self.last_request: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", self.get_model, methods=["GET"]),
            Route("/_sim/stats", self.stats, methods=["GET"]),
            Route("/_sim/faults", self.add_fault, methods=["POST"]),
            Route("/_sim/faults", self.clear_faults, methods=["DELETE"]),
        ]

    # -- helpers ------------------------------------------------------------------------------------
    def _reply(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        with self._lock:
            self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
        base = {"x-request-id": "req_" + uuid.uuid4().hex, "openai-version": "2020-10-01",
                "openai-processing-ms": "1"}
        return _json(body, status, {**base, **(headers or {})})

    def _auth(self, request: Request) -> tuple[str, Response | None]:
        if self.api_key is None:
            return "not required", None
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return "missing", self._reply(fmt.no_key(), 401)
        given = header[7:].strip()
        if given != self.api_key:
            return "wrong", self._reply(fmt.wrong_key(given), 401)
        return "ok", None

    # -- /v1 ----------------------------------------------------------------------------------------
    async def list_models(self, request: Request) -> Response:
        _, refused = self._auth(request)
        return refused or self._reply({"object": "list", "data": [fmt.model_entry(m) for m in self.models]})

    async def get_model(self, request: Request) -> Response:
        _, refused = self._auth(request)
        if refused:
            return refused
        model = request.path_params["model"]
        if model not in self.models:
            return self._reply(fmt.model_not_found(model), 404)
        return self._reply(fmt.model_entry(model))

    async def chat(self, request: Request) -> Response:
        with self._lock:
            self.requests += 1
        auth, refused = self._auth(request)
        if refused:
            return refused
        fault = self.faults.take()
        if fault is not None and fault.kind == FaultKind.RATE_LIMIT:
            return self._reply(fmt.rate_limited(self.models[0], fault.retry_after_s), 429, {
                "retry-after": f"{fault.retry_after_s:g}", "retry-after-ms": str(int(fault.retry_after_s * 1000)),
                "x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{fault.retry_after_s:g}s"})
        if fault is not None and fault.kind == FaultKind.SERVER_ERROR:
            return self._reply(fmt.server_error(), 500)
        if fault is not None and fault.kind == FaultKind.UNAVAILABLE:
            return self._reply(fmt.overloaded(), 503)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return self._reply(fmt.bad_json_body(), 400)
        problem = self._invalid(body)
        if problem is not None:
            return problem
        model, messages = body["model"], body["messages"]
        json_mode = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
        with self._lock:
            self.last_request = {"model": model, "messages": messages, "response_format": body.get("response_format"),
                                 "authorization": auth, "stream": bool(body.get("stream"))}
        delay = self.latency_s + (fault.delay_s if fault is not None and fault.kind == FaultKind.SLOW else 0.0)
        if delay:
            await asyncio.sleep(delay)
        if fault is not None and fault.kind == FaultKind.INVALID_JSON:
            content = answers.invalid_json(messages)
        elif fault is not None and fault.kind == FaultKind.INVALID_SCHEMA:
            content = answers.invalid_schema(messages)
        else:
            content = answers.answer(messages, json_mode)
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and fmt.tokens(content) > limit:
            content, finish = content[:limit * 4], "length"
        prompt_tokens = sum(fmt.tokens(json.dumps(m.get("content"))) for m in messages)
        cid = fmt.completion_id(json.dumps(messages, sort_keys=True))
        n = int(body.get("n") or 1)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(cid, model, content, finish, n, prompt_tokens, include_usage)
        return self._reply(fmt.completion(cid, model, [(content, finish)] * n, prompt_tokens))

    def _invalid(self, body: Any) -> Response | None:
        """OpenAI's 400/404 for a request it would refuse, else None."""
        if not isinstance(body, dict):
            return self._reply(fmt.bad_json_body(), 400)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self._reply(fmt.error("you must provide a model parameter"), 400)
        messages = body.get("messages")
        if messages is None:
            return self._reply(fmt.error("Missing required parameter: 'messages'.", param="messages",
                                         code="missing_required_parameter"), 400)
        if not isinstance(messages, list):
            return self._reply(fmt.error(f"Invalid type for 'messages': expected an array, but got "
                                         f"{type(messages).__name__} instead.", param="messages",
                                         code="invalid_type"), 400)
        if not messages:
            return self._reply(fmt.error("Invalid 'messages': empty array. Expected an array with minimum length 1, "
                                         "but got an empty array instead.", param="messages", code="empty_array"), 400)
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ROLES:
                return self._reply(fmt.error(f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                                             "'user', 'function', 'tool', and 'developer'.",
                                             param=f"messages[{i}].role", code="invalid_value"), 400)
        n = body.get("n", 1)
        if n is not None and (not isinstance(n, int) or not 1 <= n <= 128):
            return self._reply(fmt.error(f"Invalid 'n': integer between 1 and 128 expected, got {n!r}.", param="n",
                                         code="invalid_value"), 400)
        kind = (body.get("response_format") or {}).get("type", "text")
        if kind not in ("text", "json_object", "json_schema"):
            return self._reply(fmt.error(f"Invalid value: '{kind}'. Supported values are: 'json_object', "
                                         "'json_schema', and 'text'.", param="response_format.type",
                                         code="invalid_value"), 400)
        if kind == "json_object" and "json" not in json.dumps([m.get("content") for m in messages]).lower():
            return self._reply(fmt.error("'messages' must contain the word 'json' in some form, to use "
                                         "'response_format' of type 'json_object'.", param="messages"), 400)
        if model not in self.models:
            return self._reply(fmt.model_not_found(model), 404)
        return None

    def _stream(self, cid: str, model: str, content: str, finish: str, n: int, prompt_tokens: int,
                include_usage: bool) -> Response:
        created = int(time.time())

        async def events() -> AsyncIterator[bytes]:
            for index in range(n):
                yield b"data: " + orjson.dumps(fmt.chunk(cid, model, created, {"role": "assistant", "content": "",
                                                                              "refusal": None}, None, index)) + b"\n\n"
                for start in range(0, len(content), 16):
                    piece = {"content": content[start:start + 16]}
                    yield b"data: " + orjson.dumps(fmt.chunk(cid, model, created, piece, None, index)) + b"\n\n"
                yield b"data: " + orjson.dumps(fmt.chunk(cid, model, created, {}, finish, index)) + b"\n\n"
            if include_usage:
                usage = fmt.usage_chunk(cid, model, created, prompt_tokens, fmt.tokens(content) * n)
                yield b"data: " + orjson.dumps(usage) + b"\n\n"
            yield b"data: [DONE]\n\n"

        with self._lock:
            self.by_status["200"] = self.by_status.get("200", 0) + 1
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"x-request-id": "req_" + uuid.uuid4().hex})

    # -- /_sim ----------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "by_status": dict(self.by_status), "faults_applied":
                    dict(self.faults.applied), "faults_pending": self.faults.pending(),
                    "last_request": self.last_request, "models": self.models}

    async def stats(self, request: Request) -> Response:
        return _json(self.snapshot())

    async def add_fault(self, request: Request) -> Response:
        try:
            fault = Fault.model_validate(orjson.loads(await request.body()))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            return _json({"error": str(exc)}, 400)
        self.faults.add(fault)
        return _json({"queued": fault.model_dump(mode="json"), "pending": self.faults.pending()})

    async def clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return _json({"pending": []})


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(256)
    sock.setblocking(False)
    return sock


class LLMSimulator:
    """The simulator on loopback in a background thread (for tests); ``base_url`` ends in ``/v1``.

    >>> with LLMSimulator(api_key="sk-test") as sim:
    ...     sim.add_fault(Fault(kind="rate_limit", retry_after_s=0.2))
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None,
                 models: Sequence[str] = (DEFAULT_MODEL,), faults: Sequence[Fault] = (),
                 latency_s: float = 0.0) -> None:
        self.host = host
        self.api = ChatCompletionsApi(api_key=api_key, models=models, faults=FaultPlan(list(faults)),
                                      latency_s=latency_s)
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(Starlette(routes=self.api.routes()), log_level="warning",
                                                     access_log=False, lifespan="off", timeout_graceful_shutdown=1))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> LLMSimulator:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True,
                                        name="llm-sim")
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("LLM simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(5)
            self._thread = None
        self._sock.close()

    def add_fault(self, fault: Fault) -> None:
        self.api.faults.add(fault)

    def clear_faults(self) -> None:
        self.api.faults.clear()

    def stats(self) -> dict[str, Any]:
        return self.api.snapshot()

    def __enter__(self) -> LLMSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tacore llm-sim", description="OpenAI-compatible Chat Completions "
                                     "simulator that answers analyze.stock prompts deterministically")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100, help="0 = any free port")
    parser.add_argument("--api-key", help="require this Bearer key (also LLM_SIM_API_KEY)")
    parser.add_argument("--model", action="append", help=f"model id served (repeatable; default {DEFAULT_MODEL})")
    parser.add_argument("--fault", action="append", default=[], metavar="KIND[:COUNT[:ARG]]",
                        help="queue a fault: rate_limit, server_error, unavailable, slow, invalid_json, "
                             "invalid_schema; COUNT a number or 'always'; ARG Retry-After or delay seconds")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``tacore llm-sim``: print one JSON line with the base URL once listening; serve until SIGTERM/SIGINT,
    then exit 0. The server runs in a thread; this (main) thread owns the signals."""
    import os
    import signal

    args = build_parser().parse_args(argv)
    try:
        faults = [Fault.parse(text) for text in args.fault]
    except (ValueError, ValidationError) as exc:
        print(f"tacore llm-sim: bad --fault: {exc}", file=sys.stderr)
        return 2
    api_key = args.api_key or os.environ.get("LLM_SIM_API_KEY") or None
    models = args.model or [DEFAULT_MODEL]
    try:
        sim = LLMSimulator(args.host, args.port, api_key=api_key, models=models, faults=faults,
                           latency_s=args.latency_ms / 1000.0)
    except OSError as exc:
        print(f"tacore llm-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        sim.start()
        print(json.dumps({"base_url": sim.base_url, "models": models, "auth": api_key is not None}), flush=True)
        stop.wait()
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
