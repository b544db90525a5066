"""Faults with real processes: kill -9 of workers mid-request, broker restarts, floods past the queue bound."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen
from typing import Any

import psutil
import pytest
import zmq

from clients import LazyPirateClient
from tacore.protocol import worker as wp
from tests.support.processes import ROOT, TACoreProcess, raw_call, wait_until


def _dealer(endpoint: str) -> zmq.Socket[Any]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(endpoint)
    return sock


def _collect(sock: zmq.Socket[Any], count: int, timeout_s: float = 20.0) -> dict[str, dict[str, Any]]:
    replies: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(replies) < count and time.monotonic() < deadline:
        if sock.poll(200):
            reply = json.loads(sock.recv_multipart()[-1])
            assert reply["request_id"] not in replies, f"{reply['request_id']} answered twice"
            replies[reply["request_id"]] = reply
    return replies


def _request(sock: zmq.Socket[Any], request_id: str, method: str, ms: int) -> None:
    sock.send_multipart([b"", json.dumps({"request_id": request_id, "method": method,
                                          "params": {"ms": ms, "tag": request_id}}).encode()])


def _running_on(tacore: TACoreProcess) -> dict[str, list[str]]:
    return {w["worker_id"]: [c["request_id"] for c in w["current"]]
            for w in tacore.status()["workers"] if w["kind"] == "test" and w["state"] != "dead"}


def _running_exactly(tacore: TACoreProcess, request_ids: list[str]) -> dict[str, list[str]] | None:
    running = _running_on(tacore)
    each = [rid for ids in running.values() for rid in ids]
    return running if sorted(each) == request_ids and all(len(ids) <= 1 for ids in running.values()) else None


def test_killed_worker_requests_are_all_answered_idempotent_ones_rerun_once(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    workers = {"first": test_worker_factory(tacore.backend, "first", 2)}
    wait_until(lambda: tacore.status()["methods"].get("test.sleep", {}).get("workers") == 1, 10, "the first worker")
    workers["second"] = test_worker_factory(tacore.backend, "second", 2)
    wait_until(lambda: tacore.status()["methods"]["test.sleep"]["workers"] == 2, 10, "the second worker")
    sock = _dealer(tacore.frontend)
    try:
        # round 1: a non-idempotent call dies with its worker; queued calls are still all answered
        _request(sock, "plain", "test.sleep", 800)
        _request(sock, "idem", "test.sleep_idempotent", 800)
        for i in range(4):
            _request(sock, f"queued-{i}", "test.sleep_idempotent" if i % 2 else "test.sleep", 20)
        running = wait_until(lambda: _running_exactly(tacore, ["idem", "plain"]), 3, "one slow call on each worker")
        doomed = next(w for w, ids in running.items() if ids == ["plain"])
        os.kill(workers[doomed].pid, signal.SIGKILL)
        round1 = _collect(sock, 6)
        assert len(round1) == 6, "a request went unanswered"
        assert round1["plain"]["error"]["code"] == "WORKER_LOST"
        assert round1["plain"]["error"]["retryable"] is False
        assert all(r["status"] == "success" for rid, r in round1.items() if rid != "plain")

        # round 2: an idempotent call whose worker dies is run again, once, on the other worker
        workers["third"] = test_worker_factory(tacore.backend, "third", 2)
        wait_until(lambda: len(_running_on(tacore)) == 2, 10, "the third worker")
        _request(sock, "blocker", "test.sleep", 600)
        _request(sock, "idem-2", "test.sleep_idempotent", 600)
        running = wait_until(lambda: _running_exactly(tacore, ["blocker", "idem-2"]), 3, "one call on each worker")
        doomed = next(w for w, ids in running.items() if ids == ["idem-2"])
        keeper = next(w for w in running if w != doomed)
        os.kill(workers[doomed].pid, signal.SIGKILL)
        round2 = _collect(sock, 2)
    finally:
        sock.close()
    assert round2["blocker"]["status"] == "success"
    assert round2["idem-2"]["status"] == "success"
    assert round2["idem-2"]["data"]["pid"] == workers[keeper].pid
    status = tacore.status()
    assert status["counters"]["redispatched"] == 1
    assert status["counters"]["worker_lost"] == 1
    assert status["inflight"] == 0 == sum(len(w["current"]) for w in status["workers"] if w["state"] != "dead")
    assert workers[keeper].poll() is None


def test_killed_pool_worker_is_replaced_and_detected_within_three_intervals(tacore: TACoreProcess) -> None:
    before = {w["worker_id"]: w["pid"] for w in tacore.status()["workers"] if w["kind"] == "worker"}
    assert len(before) == 2
    os.kill(before["w1"], signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: any(w["worker_id"] == "w1" and w["state"] == "dead" for w in tacore.status()["workers"]),
               3.0, "the killed worker marked dead (3 heartbeat intervals = 0.6 s here)")
    detected = time.monotonic() - killed_at

    def replaced() -> bool:
        live = {w["worker_id"]: w["pid"] for w in tacore.status()["workers"]
                if w["state"] != "dead" and w["kind"] == "worker"}  # the pool's (the order process is one too)
        return live.get("w1") not in (None, before["w1"]) and len(live) == 2

    wait_until(replaced, 5.0, "the pool back to full size with a new w1")
    assert detected < 3.0
    assert raw_call(tacore.frontend, {"method": "health.check"})["status"] == "success"


def test_broker_restart_client_retry_succeeds_and_workers_reregister(
    tacore_factory: Callable[..., TACoreProcess], tmp_path: Path
) -> None:
    broker = tacore_factory(["broker", "--no-request-log"], HEARTBEAT_INTERVAL_MS="200")
    workers = tacore_factory(["worker", "--count", "1", "--connect", broker.backend], WORKER_COUNT="1",
                             RECONNECT_MAX_MS="500")
    broker.wait_healthy(workers=1)
    assert broker.stop() == 0

    result: dict[str, Any] = {}

    def call_during_outage() -> None:
        with LazyPirateClient(broker.frontend, timeout_ms=500, retries=20) as client:
            result["reply"] = client.request("health.check", {}, request_id="across-restart")

    caller = threading.Thread(target=call_during_outage)
    caller.start()
    time.sleep(1.0)  # the client retries against nothing for a while
    restarted = TACoreProcess(tmp_path / "again", ["broker", "--no-request-log"], env=broker.env, ports=broker.ports)
    restarted.env = broker.env
    restarted.start()
    try:
        status = restarted.wait_healthy(workers=1)
        caller.join(15)
        assert result["reply"]["status"] == "success"
        assert result["reply"]["request_id"] == "across-restart"
        assert status["workers"][0]["worker_id"].startswith(f"{socket.gethostname()}-w")  # unique across hosts
    finally:
        restarted.stop()
        workers.stop()


@pytest.mark.timeout(120)
def test_flood_past_the_queue_bound_gets_busy_and_broker_memory_stays_bounded(
    tacore_factory: Callable[..., TACoreProcess], test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    tacore = tacore_factory(QUEUE_LIMIT="200")
    tacore.wait_healthy(workers=2)
    test_worker_factory(tacore.backend, "flood-worker", 4)
    wait_until(lambda: tacore.status()["methods"].get("test.sleep", {}).get("workers") == 1, 10, "the flood worker")
    broker = psutil.Process(tacore.status()["pid"])
    sock = _dealer(tacore.frontend)
    rss: list[int] = []
    try:
        total = 0
        for wave in range(5):
            for i in range(6000):
                sock.send_multipart([b"", json.dumps({"request_id": f"f{wave}-{i}", "method": "test.sleep",
                                                      "params": {"ms": 0}}).encode()])
            total += 6000
            replies = _collect(sock, 6000, timeout_s=60)
            assert len(replies) == 6000, "every request of the flood gets an answer"
            codes = {r["error"]["code"] if r["error"] else "OK" for r in replies.values()}
            assert codes <= {"OK", "BUSY"} and "BUSY" in codes and "OK" in codes
            rss.append(broker.memory_info().rss)
    finally:
        sock.close()
    assert raw_call(tacore.frontend, {"method": "health.check"})["status"] == "success"
    growth = rss[-1] - rss[1]
    assert growth < 20 * 1024 * 1024, f"broker memory grew by {growth / 1e6:.1f} MB over the last waves: {rss}"


def _raw_worker(backend: str, methods: dict[str, dict[str, bool]]) -> zmq.Socket[Any]:
    sock = _dealer(backend)
    sock.send_multipart([wp.READY, json.dumps({"worker_id": "raw", "pid": os.getpid(), "kind": "test",
                                               "credit": 1, "methods": methods}).encode()])
    return sock


def _next_command(sock: zmq.Socket[Any], command: bytes, timeout_s: float = 5.0) -> list[bytes]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sock.poll(100):
            frames = sock.recv_multipart()
            if frames[0][:wp.COMMAND_LENGTH] == command:
                return frames
    raise AssertionError(f"no {wp.COMMAND_NAMES[command]} within {timeout_s} s")


@pytest.mark.parametrize("bad_reply", [
    pytest.param(lambda seq: [wp.REPLY + seq.to_bytes(8, "little")], id="too-short"),
    pytest.param(lambda seq: [wp.pack_replies([(seq, True, 0.1, None, b"{}")]), b"extra"], id="two-frames"),
    pytest.param(lambda seq: [wp.pack_replies([(seq, False, 0.1, "INTERNAL", b"{}")])[:-4]], id="truncated-code"),
    pytest.param(lambda seq: [wp.REPLY], id="no-reply"),
])
def test_a_worker_that_breaks_the_protocol_is_removed_at_once_and_its_request_answered(
    tacore_factory: Callable[..., TACoreProcess], bad_reply: Callable[[int], list[bytes]]
) -> None:
    tacore = tacore_factory(HEARTBEAT_INTERVAL_MS="1000", WORKER_COUNT="1")  # liveness: 3 s
    tacore.wait_healthy(workers=1)
    worker = _raw_worker(tacore.backend, {"test.raw": {"idempotent": False}})
    client = _dealer(tacore.frontend)
    try:
        wait_until(lambda: tacore.status()["methods"].get("test.raw", {}).get("workers") == 1, 5, "the raw worker")
        _request(client, "doomed", "test.raw", 0)
        request = _next_command(worker, wp.REQUEST)
        [(seq, _, _)] = wp.unpack_requests(request[0])
        sent_at = time.monotonic()
        worker.send_multipart(bad_reply(seq))
        replies = _collect(client, 1, timeout_s=5)
        answered_in = time.monotonic() - sent_at
        _next_command(worker, wp.DISCONNECT)
    finally:
        client.close()
        worker.close()
    assert replies["doomed"]["error"]["code"] == "WORKER_LOST"
    assert answered_in < 1.0, f"answered after {answered_in:.2f} s: the broker waited for the heartbeat to expire"
    status = tacore.status()
    assert any(w["worker_id"] == "raw" and w["dead_reason"].startswith("protocol error") for w in status["workers"])
    assert status["inflight"] == 0
    assert raw_call(tacore.frontend, {"method": "health.check"})["status"] == "success"


def test_broker_kill_9_then_a_lazy_pirate_retry_never_runs_a_non_idempotent_request_twice(
    tacore_factory: Callable[..., TACoreProcess], test_worker_factory: Callable[..., Popen[bytes]], tmp_path: Path
) -> None:
    # the broker knows the test methods from start (as it knows its pool's), so a call waits for the worker
    broker = tacore_factory(["broker", "--no-request-log"], PYTHONPATH=str(ROOT),
                            WORKER_REGISTRY="tests.support.method_worker:build_registry")
    for i in (1, 2):
        test_worker_factory(broker.backend, f"once-{i}", 1)
    wait_until(lambda: broker.status()["methods"].get("test.count", {}).get("workers") == 2, 10, "the workers")
    runs = tmp_path / "runs"
    result: dict[str, Any] = {}

    def call() -> None:
        with LazyPirateClient(broker.frontend, timeout_ms=400, retries=30) as client:
            # long enough that the other worker, idle, has registered with the new broker and gets the retry:
            # it finds the first run open (IN_PROGRESS), and the client asks again until the stored reply comes
            result["reply"] = client.request("test.count", {"ms": 3000, "tag": "once", "path": str(runs)},
                                             request_id="exactly-once", deadline_ms=20_000)

    caller = threading.Thread(target=call)
    caller.start()
    wait_until(runs.exists, 5, "the handler started")
    assert broker.proc is not None
    broker.proc.kill()  # kill -9: the broker's memory (active requests, dedupe cache) is gone
    broker.proc.wait(5)
    restarted = TACoreProcess(tmp_path / "again", ["broker", "--no-request-log"], env=broker.env, ports=broker.ports)
    restarted.env = broker.env
    restarted.start()
    try:
        caller.join(30)
        assert not caller.is_alive()
        answered = raw_call(restarted.frontend, {"method": "broker.metrics"})["data"]["methods"]["test.count"]
    finally:
        restarted.stop()
    assert answered["errors"].get("IN_PROGRESS", 0) >= 1, answered  # the retry met the open first run
    reply = result["reply"]
    assert reply["status"] == "success", reply
    assert len(runs.read_text().splitlines()) == 1, "the request ran twice"
    assert reply["data"]["runs"] == 1
