"""The worker runtime's commit barrier (group commit), resumable methods and CONFLICT for a reused
request_id, with real broker and worker processes (tests/support/method_worker.py)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen
from typing import Any

import zmq

from tests.support.processes import TACoreProcess, raw_call, wait_until


def _serving(tacore: TACoreProcess, method: str, count: int = 1) -> None:
    wait_until(lambda: tacore.status()["methods"].get(method, {}).get("workers") == count, 15, f"{method} served")


def _dealer(endpoint: str) -> zmq.Socket[Any]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def test_replies_leave_only_after_their_batch_is_committed_and_a_batch_shares_one_commit(  # fast handlers queue

        tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]], tmp_path: Path) -> None:
    test_worker_factory(tacore.backend, "barrier", 8, TEST_BARRIER_DIR=str(tmp_path))
    _serving(tacore, "test.stage")
    sock = _dealer(tacore.frontend)
    try:
        for i in range(24):
            sock.send_multipart([b"", json.dumps({"request_id": f"s{i}", "method": "test.stage",
                                                  "params": {"ms": 0, "tag": f"s{i}"}}).encode()])
        replies = 0
        deadline = time.monotonic() + 20
        while replies < 24 and time.monotonic() < deadline:
            if sock.poll(200):
                reply = json.loads(sock.recv_multipart()[-1])
                assert reply["status"] == "success", reply
                committed = (tmp_path / "committed.txt").read_text().split()
                assert reply["data"]["tag"] in committed, "a reply left before its batch was committed"
                replies += 1
        assert replies == 24
    finally:
        sock.close()
    batches = [int(n) for n in (tmp_path / "commits.txt").read_text().split()]
    assert sum(batches) == 24 and len(batches) < 24, batches  # some commits carried several replies


def test_a_batch_whose_commit_fails_is_answered_unavailable_and_its_retry_runs_again(
        tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]], tmp_path: Path) -> None:
    test_worker_factory(tacore.backend, "barrier", 1, TEST_BARRIER_DIR=str(tmp_path))
    _serving(tacore, "test.stage")
    (tmp_path / "refuse").write_text("")
    request = {"request_id": "refused-1", "method": "test.stage", "params": {"tag": "refused-1"}}
    first = raw_call(tacore.frontend, request)
    assert first["error"]["code"] == "UNAVAILABLE" and first["error"]["retryable"] is True
    (tmp_path / "refuse").unlink()
    second = raw_call(tacore.frontend, request)  # its claim was released: it runs
    assert second["status"] == "success"
    assert (tmp_path / "committed.txt").read_text().split() == ["refused-1"]


def test_a_resumable_method_whose_worker_died_runs_again_on_retry_where_a_plain_one_is_worker_lost(
        tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]], tmp_path: Path) -> None:
    fast_lease = {"WORKER_RECYCLE_GRACE_MS": "100"}  # the lease: deadline + grace + 1 s
    worker = test_worker_factory(tacore.backend, "resume0", 2, **fast_lease)
    outcomes = {}
    for n, method in enumerate(("test.resumable", "test.count"), start=1):
        _live(tacore, f"resume{n - 1}")
        path = tmp_path / f"{method}.txt"
        sock = _dealer(tacore.frontend)
        try:
            params = {"ms": 1500, "tag": method, "path": str(path)}  # a retry carries the same params
            sock.send_multipart([b"", json.dumps({"request_id": method, "method": method, "timeout_ms": 300,
                                                  "params": params}).encode()])
            wait_until(path.exists, 10, f"{method} running")
            os.kill(worker.pid, signal.SIGKILL)  # its first run dies without a reply
            worker.wait(5)
        finally:
            sock.close()
        worker = test_worker_factory(tacore.backend, f"resume{n}", 2, **fast_lease)
        _live(tacore, f"resume{n}")
        time.sleep(1.5)  # past the first run's lease
        outcomes[method] = raw_call(tacore.frontend, {"request_id": method, "method": method, "params": params},
                                    8000)
        outcomes[method]["runs"] = len(path.read_text().splitlines())
    assert outcomes["test.resumable"]["status"] == "success", outcomes
    assert outcomes["test.resumable"]["runs"] == 2
    plain = outcomes["test.count"]
    assert plain["error"]["code"] == "WORKER_LOST" and plain["error"]["details"]["first_run"] == "interrupted"
    assert plain["runs"] == 1


def _live(tacore: TACoreProcess, worker_id: str) -> None:
    """Until ``worker_id`` is the only live test worker (a killed one is gone from the broker's view).
    Test workers' ids differ from the pool's (w1, w2...): the broker refuses a worker taking a live one's id."""
    wait_until(lambda: [w["worker_id"] for w in tacore.status()["workers"]
                        if w["kind"] == "test" and w["state"] != "dead"] == [worker_id], 15, f"{worker_id} alone")


def test_a_request_id_reused_for_other_params_is_a_conflict_once_the_broker_has_forgotten_it(
        tacore_factory: Callable[..., TACoreProcess], test_worker_factory: Callable[..., Popen[bytes]],
        tmp_path: Path) -> None:
    tacore = tacore_factory(DEDUPE_TTL_S="0")
    tacore.wait_healthy(workers=2)
    test_worker_factory(tacore.backend, "solo", 1)
    _serving(tacore, "test.count")
    rid = uuid.uuid4().hex
    path = str(tmp_path / "runs.txt")
    assert raw_call(tacore.frontend, {"request_id": rid, "method": "test.count",
                                      "params": {"tag": "a", "path": path}})["status"] == "success"
    again = raw_call(tacore.frontend, {"request_id": rid, "method": "test.count", "params": {"tag": "b", "path": path}})
    assert again["error"]["code"] == "CONFLICT" and again["error"]["retryable"] is False

