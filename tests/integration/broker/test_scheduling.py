"""Priorities, deadlines, per-method routing and dedupe, with a real broker and test-method workers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from subprocess import Popen
from typing import Any

import zmq

from clients import LazyPirateClient
from tests.support.processes import TACoreProcess, raw_call, wait_until


def _dealer(endpoint: str) -> zmq.Socket[Any]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def _send(sock: zmq.Socket[Any], method: str, params: dict[str, Any], request_id: str, **extra: Any) -> None:
    sock.send_multipart([b"", json.dumps({"request_id": request_id, "method": method, "params": params,
                                          **extra}).encode()])


def _collect(sock: zmq.Socket[Any], count: int, timeout_s: float = 15.0) -> dict[str, dict[str, Any]]:
    replies: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(replies) < count and time.monotonic() < deadline:
        if sock.poll(200):
            reply = json.loads(sock.recv_multipart()[-1])
            assert reply["request_id"] not in replies, "a request was answered twice"
            replies[reply["request_id"]] = reply
    return replies


def _wait_for_method(tacore: TACoreProcess, method: str, workers: int = 1) -> None:
    wait_until(lambda: tacore.status()["methods"].get(method, {}).get("workers", 0) >= workers, 15,
               f"{workers} worker(s) serving {method}")


def test_queued_requests_run_by_priority_then_arrival(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    test_worker_factory(tacore.backend, "prio-worker", 1)
    _wait_for_method(tacore, "test.sleep")
    sock = _dealer(tacore.frontend)
    try:
        _send(sock, "test.sleep", {"ms": 400, "tag": "blocker"}, "blocker")
        time.sleep(0.15)  # the blocker is running; everything below waits in the broker's queue
        plan = [("p9-a", 9), ("p5-a", 5), ("p0-a", 0), ("p5-b", 5), ("p0-b", 0), ("p9-b", 9)]
        for tag, priority in plan:
            _send(sock, "test.sleep", {"ms": 1, "tag": tag}, tag, priority=priority)
        replies = _collect(sock, len(plan) + 1)
    finally:
        sock.close()
    order = sorted((r["data"]["order"], r["data"]["tag"]) for r in replies.values())
    assert [tag for _, tag in order] == ["blocker", "p0-a", "p0-b", "p5-a", "p5-b", "p9-a", "p9-b"]


def test_request_past_its_deadline_is_answered_timeout_and_never_runs(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    test_worker_factory(tacore.backend, "deadline-worker", 1)
    _wait_for_method(tacore, "test.sleep")
    sock = _dealer(tacore.frontend)
    try:
        _send(sock, "test.sleep", {"ms": 600, "tag": "blocker"}, "blocker")
        time.sleep(0.1)
        _send(sock, "test.sleep", {"ms": 1, "tag": "stale"}, "stale", timeout_ms=200)
        _send(sock, "test.sleep", {"ms": 1, "tag": "fresh"}, "fresh", timeout_ms=5000)
        replies = _collect(sock, 3)
    finally:
        sock.close()
    assert replies["stale"]["error"]["code"] == "TIMEOUT"
    assert replies["stale"]["error"]["retryable"] is True
    assert replies["fresh"]["status"] == "success"
    # "fresh" ran right after the blocker: the stale order never took a turn on the worker
    assert replies["fresh"]["data"]["order"] == replies["blocker"]["data"]["order"] + 1


def test_method_with_no_live_worker_waits_until_its_deadline_then_times_out(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    worker = test_worker_factory(tacore.backend, "gone-worker", 1)
    _wait_for_method(tacore, "test.sleep")
    worker.kill()
    worker.wait(5)
    wait_until(lambda: tacore.status()["methods"]["test.sleep"]["workers"] == 0, 5, "the dead worker removed")
    started = time.monotonic()
    reply = raw_call(tacore.frontend, {"request_id": "orphan", "method": "test.sleep", "params": {},
                                       "timeout_ms": 500}, timeout_ms=5000)
    assert reply["error"]["code"] == "TIMEOUT"
    assert 0.45 <= time.monotonic() - started < 3.0
    # the pool keeps serving other methods meanwhile
    assert raw_call(tacore.frontend, {"method": "health.check"})["status"] == "success"


def test_a_worker_joining_later_drains_the_waiting_requests(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    first = test_worker_factory(tacore.backend, "early-worker", 1)
    _wait_for_method(tacore, "test.sleep")
    first.kill()
    first.wait(5)
    wait_until(lambda: tacore.status()["methods"]["test.sleep"]["workers"] == 0, 5, "the early worker removed")
    sock = _dealer(tacore.frontend)
    try:
        for i in range(5):
            _send(sock, "test.sleep", {"tag": f"w{i}"}, f"wait-{i}", timeout_ms=15000)
        time.sleep(0.3)
        test_worker_factory(tacore.backend, "late-worker", 2)
        replies = _collect(sock, 5)
    finally:
        sock.close()
    assert len(replies) == 5 and all(r["status"] == "success" for r in replies.values())


def test_retry_of_a_request_id_gets_the_same_reply_without_running_again(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    test_worker_factory(tacore.backend, "dedupe-worker", 1)
    _wait_for_method(tacore, "test.sleep")
    request_id = uuid.uuid4().hex
    sock = _dealer(tacore.frontend)
    try:
        _send(sock, "test.sleep", {"ms": 300, "tag": "once"}, request_id)
        time.sleep(0.05)
        _send(sock, "test.sleep", {"ms": 300, "tag": "once"}, request_id)  # retry while in flight
        first = _collect(sock, 1)
        assert sock.poll(1000)
        second = json.loads(sock.recv_multipart()[-1])
    finally:
        sock.close()
    later = raw_call(tacore.frontend, {"request_id": request_id, "method": "test.sleep",
                                       "params": {"ms": 300, "tag": "once"}})  # retry after the answer
    assert first[request_id] == second == later
    after = raw_call(tacore.frontend, {"method": "test.sleep", "params": {"tag": "next"}})
    assert after["data"]["order"] == first[request_id]["data"]["order"] + 1, "the retried request ran again"
    assert tacore.status()["counters"]["deduped"] == 2


def test_past_the_dedupe_ttl_an_idempotent_request_runs_afresh_a_non_idempotent_one_never(
    tacore_factory: Callable[..., TACoreProcess], test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    tacore = tacore_factory(DEDUPE_TTL_S="0.5")  # pruned on each heartbeat (every 200 ms here)
    tacore.wait_healthy(workers=2)
    test_worker_factory(tacore.backend, "ttl-worker", 1)
    _wait_for_method(tacore, "test.sleep")
    idempotent = {"request_id": "ttl-1", "method": "test.sleep_idempotent", "params": {"tag": "ttl"}}
    plain = {"request_id": "ttl-2", "method": "test.sleep", "params": {"tag": "ttl"}}
    first = raw_call(tacore.frontend, idempotent)
    first_plain = raw_call(tacore.frontend, plain)
    assert raw_call(tacore.frontend, idempotent) == first  # within the TTL: the broker's stored reply
    time.sleep(0.5 + 0.2 + 0.3)  # the TTL, a heartbeat interval, slack
    fresh = raw_call(tacore.frontend, idempotent)
    assert fresh["status"] == "success" and fresh["data"]["order"] == first_plain["data"]["order"] + 1
    assert raw_call(tacore.frontend, plain) == first_plain  # the durable record still answers: never run twice


def test_lazy_pirate_client_retries_with_the_same_request_id(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    test_worker_factory(tacore.backend, "slow-worker", 1)
    _wait_for_method(tacore, "test.sleep")
    with LazyPirateClient(tacore.frontend, timeout_ms=250, retries=8) as client:
        reply = client.request("test.sleep", {"ms": 700, "tag": "slow"}, request_id="lp-1")
    assert reply["status"] == "success" and reply["request_id"] == "lp-1"
    after = raw_call(tacore.frontend, {"method": "test.sleep", "params": {"tag": "next"}})
    assert after["data"]["order"] == reply["data"]["order"] + 1, "a retry ran the request twice"


def test_handler_exception_is_internal_and_the_worker_lives_on(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    worker = test_worker_factory(tacore.backend, "failing-worker", 1)
    _wait_for_method(tacore, "test.fail")
    reply = raw_call(tacore.frontend, {"request_id": "f1", "method": "test.fail", "params": {"tag": "boom"}})
    assert reply["error"]["code"] == "INTERNAL" and "handler failure boom" in reply["error"]["message"]
    assert raw_call(tacore.frontend, {"method": "test.sleep", "params": {}})["status"] == "success"
    assert worker.poll() is None
