"""Requests through a real broker and worker pool, over REQ (the seed's client) and DEALER sockets."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
import zmq

from clients import AsyncClient, LazyPirateClient, RemoteError
from tests.support.processes import TACoreProcess, raw_call, wait_until


def test_seed_style_req_client_gets_health_in_the_seed_reply_shape(shared_tacore: TACoreProcess) -> None:
    request = {"request_id": "seed-1", "method": "health.check", "params": {"detailed": False}}
    reply = raw_call(shared_tacore.frontend, request)
    assert set(reply) == {"status", "request_id", "data", "error", "processing_time_ms", "timestamp"}
    assert reply["status"] == "success" and reply["request_id"] == "seed-1" and reply["error"] is None
    data = reply["data"]
    assert data["status"] == "healthy" and data["pid"] > 0 and data["worker_id"].startswith("w")
    assert {"version", "uptime_s"} <= set(data)


def test_detailed_health_reports_broker_and_dependencies(shared_tacore: TACoreProcess) -> None:
    def settled(client: LazyPirateClient) -> dict[str, Any] | None:
        # the broker's view reaches workers with each heartbeat (200 ms here), so it may lag a beat or two
        data: dict[str, Any] = client.health_check(detailed=True)
        deps = data["dependencies"]
        settled = data["broker"]["live_workers"] == 2 and deps.get("recorder", {}).get("status") == "up"
        return data if settled and deps["database"]["reason"] == "writes succeed" else None

    with LazyPirateClient(shared_tacore.frontend) as client:
        client.health_check()  # a request the recorder writes, so the database state is "writes succeed"
        data = wait_until(lambda: settled(client), 10, "both workers and the recorder in the broker's states")
    assert data["broker"]["snapshot_age_s"] < 1.0
    assert data["broker"]["queue_depth"] == 0
    deps = data["dependencies"]
    assert list(deps) == ["workers", "data_agent", "recorder", "database", "cache", "candle_store", "disk"]
    assert deps["workers"] == {"status": "up", "reason": "2 live worker(s)", "live": 2}
    assert deps["database"]["status"] == "up" and deps["database"]["kind"] == "sqlite"
    assert deps["recorder"]["status"] == "up" and deps["recorder"]["dropped"] == 0
    for name in ("data_agent", "cache", "candle_store"):  # serve --no-data-agent
        assert deps[name]["status"] == "not_configured" and deps[name]["reason"]
    assert deps["disk"]["status"] == "up" and deps["disk"]["reported_by"] == "supervisor"
    assert data["status"] == "healthy"


async def test_dealer_keeps_many_requests_in_flight_matched_by_request_id(shared_tacore: TACoreProcess) -> None:
    import asyncio

    async with AsyncClient(shared_tacore.frontend) as client:
        replies = await asyncio.gather(*(client.request("health.check", request_id=f"many-{i}") for i in range(300)))
    assert [r["request_id"] for r in replies] == [f"many-{i}" for i in range(300)]
    assert all(r["status"] == "success" for r in replies)
    assert {r["data"]["worker_id"] for r in replies} == {"w1", "w2"}


BAD_INPUTS = [
    pytest.param(b"this is not json", None, "INVALID_REQUEST", id="not-json"),
    pytest.param(b"[1, 2, 3]", None, "INVALID_REQUEST", id="not-an-object"),
    pytest.param(b'{"request_id": "b1", "params": {}}', "b1", "INVALID_REQUEST", id="no-method"),
    pytest.param(b'{"request_id": "b2", "method": 42}', "b2", "INVALID_REQUEST", id="method-wrong-type"),
    pytest.param(b'{"request_id": "b3", "method": "health.check", "params": "x"}', "b3", "INVALID_REQUEST",
                 id="params-wrong-type"),
    pytest.param(b'{"request_id": "b4", "method": "health.check", "priority": 11}', "b4", "INVALID_REQUEST",
                 id="priority-out-of-range"),
    pytest.param(b'{"request_id": "b5", "method": "health.check", "timeout_ms": "soon"}', "b5", "INVALID_REQUEST",
                 id="timeout-wrong-type"),
    pytest.param(b'{"request_id": "b6", "method": "' + b"y" * 129 + b'"}', "b6", "INVALID_REQUEST",
                 id="method-name-too-long"),
    pytest.param(b'{"request_id": "b7", "method": "no.such.method"}', "b7", "UNKNOWN_METHOD", id="unknown-method"),
    pytest.param(b'{"request_id": "b8", "method": "health.check", "params": {"detailed": "maybe"}}', "b8",
                 "INVALID_PARAMS", id="invalid-params"),
    pytest.param(b'{"request_id": "b9", "method": "health.check", "params": {"nope": 1}}', "b9",
                 "INVALID_PARAMS", id="unexpected-param"),
]


@pytest.mark.parametrize(("frame", "request_id", "code"), BAD_INPUTS)
def test_bad_input_over_req_and_dealer_gets_its_code_and_the_broker_keeps_serving(
    shared_tacore: TACoreProcess, frame: bytes, request_id: str | None, code: str
) -> None:
    reply = raw_call(shared_tacore.frontend, frame)
    assert reply["status"] == "error" and reply["error"]["code"] == code
    assert reply["request_id"] == request_id
    assert set(reply["error"]) == {"code", "message", "retryable", "details"}

    ctx = zmq.Context.instance()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(shared_tacore.frontend)
    try:
        dealer.send_multipart([b"", frame])
        assert dealer.poll(3000)
        frames = dealer.recv_multipart()
        assert frames[0] == b""
        assert json.loads(frames[-1])["error"]["code"] == code
    finally:
        dealer.close()

    after = raw_call(shared_tacore.frontend, {"request_id": uuid.uuid4().hex, "method": "health.check"})
    assert after["status"] == "success"


def test_invalid_params_name_the_field(shared_tacore: TACoreProcess) -> None:
    with LazyPirateClient(shared_tacore.frontend) as client, pytest.raises(RemoteError) as info:
        client.call("health.check", {"detailed": "maybe"})
    assert info.value.code == "INVALID_PARAMS"
    assert info.value.details[0]["field"] == "detailed"


def test_tacore_call_prints_one_reply_and_exits_by_status(shared_tacore: TACoreProcess) -> None:
    base = [sys.executable, "-m", "tacore", "call", "--endpoint", shared_tacore.frontend]
    ok = subprocess.run([*base, "health.check", '{"detailed": true}'], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["data"]["broker"]["live_workers"] == 2
    bad = subprocess.run([*base, "no.such"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and json.loads(bad.stdout)["error"]["code"] == "UNKNOWN_METHOD"
