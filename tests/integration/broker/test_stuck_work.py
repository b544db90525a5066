"""Hung handlers against real processes: TIMEOUT at the deadline wherever the request is, cancels that reach
the handler, requests behind a hung one moved to other workers, hung pool workers recycled (and on SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
import zmq

from tests.support.processes import ROOT, TACoreProcess, raw_call, wait_until

POOL_ENV = {"WORKER_REGISTRY": "tests.support.method_worker:build_registry", "PYTHONPATH": str(ROOT),
            "WORKER_RECYCLE_GRACE_MS": "300"}


def _dealer(endpoint: str) -> zmq.Socket[Any]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def _send(sock: zmq.Socket[Any], request_id: str, method: str, params: dict[str, Any], **extra: Any) -> None:
    sock.send_multipart([b"", json.dumps({"request_id": request_id, "method": method, "params": params,
                                          **extra}).encode()])


def _replies(sock: zmq.Socket[Any], count: int, timeout_s: float = 10.0) -> dict[str, tuple[float, dict[str, Any]]]:
    """request_id -> (time.monotonic() it came, reply); a second answer to one request_id fails the test."""
    got: dict[str, tuple[float, dict[str, Any]]] = {}
    end = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < end:
        if sock.poll(50):
            reply = json.loads(sock.recv_multipart()[-1])
            assert reply["request_id"] not in got, f"{reply['request_id']} answered twice"
            got[reply["request_id"]] = (time.monotonic(), reply)
    return got


def _pool_pids(tacore: TACoreProcess) -> dict[str, int]:
    return {w["worker_id"]: w["pid"] for w in tacore.status()["workers"] if w["state"] != "dead"}


def _wait_for_method(tacore: TACoreProcess, method: str, workers: int = 1) -> None:
    wait_until(lambda: tacore.status()["methods"].get(method, {}).get("workers", 0) >= workers, 15,
               f"{workers} worker(s) serving {method}")


@pytest.mark.parametrize("method", ["test.sleep", "test.spin"], ids=["sleeping", "busy-loop"])
def test_a_hung_handler_is_answered_timeout_at_its_deadline_and_its_worker_recycled(
    tacore_factory: Callable[..., TACoreProcess], method: str
) -> None:
    tacore = tacore_factory(**POOL_ENV)
    tacore.wait_healthy(workers=2)
    before = _pool_pids(tacore)
    sock = _dealer(tacore.frontend)
    try:
        sent = time.monotonic()
        _send(sock, "hung", method, {"ms": 60_000}, timeout_ms=600)
        [(came, reply)] = _replies(sock, 1, timeout_s=5).values()
    finally:
        sock.close()
    assert reply["error"]["code"] == "TIMEOUT", reply
    assert 0.55 <= came - sent < 1.2, f"answered {came - sent:.2f} s after sending, not at its 0.6 s deadline"
    details = reply["error"]["details"]
    assert details["state"] == "dispatched"
    assert reply["error"]["retryable"] is details["idempotent"] is (method == "test.spin")

    def recycled() -> bool:  # the worker that ran it was replaced by a new process; the pool is whole again
        now = _pool_pids(tacore)
        return len(now) == 2 and set(now.values()) != set(before.values())

    # the replacement is a new process, which starts slowly on a busy 2-core box
    wait_until(recycled, 0.3 + 1.0 + 20.0, "the hung worker replaced (grace 0.3 s)")
    status = tacore.status()
    assert status["counters"]["timeout_dispatched"] == 1 and status["inflight"] == 0
    assert raw_call(tacore.frontend, {"method": "health.check"})["status"] == "success"
    assert "still running" in (tacore.workdir / "logs" / "worker.log").read_text()


def test_requests_waiting_behind_a_hung_handler_are_handed_back_and_run_elsewhere(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]]
) -> None:
    workers = [test_worker_factory(tacore.backend, f"behind-{i}", 16) for i in (1, 2)]
    _wait_for_method(tacore, "test.spin", workers=2)
    sock = _dealer(tacore.frontend)
    try:
        for i in range(8):  # a fast method: it may queue behind other work at a worker
            _send(sock, f"warm-{i}", "test.spin", {"ms": 0})
        assert len(_replies(sock, 8)) == 8
        _send(sock, "hung", "test.spin", {"ms": 2500}, timeout_ms=20_000)
        sent = time.monotonic()
        for i in range(12):
            _send(sock, f"fast-{i}", "test.spin", {"ms": 0})
        fast = _replies(sock, 12, timeout_s=5)
        hung = _replies(sock, 1, timeout_s=5)
    finally:
        sock.close()
    assert len(fast) == 12
    slowest = max(came for came, _ in fast.values()) - sent
    assert slowest < 1.0, f"a request waited {slowest:.2f} s behind the hung one (bound: ~0.15 s + dispatch)"
    hung_pid = hung["hung"][1]["data"]["pid"]
    assert hung_pid in {w.pid for w in workers}
    assert all(reply["data"]["pid"] != hung_pid for _, reply in fast.values())
    assert tacore.status()["counters"]["handed_back"] >= 1


def test_a_cancelled_call_is_answered_cancelled_and_its_handler_sees_why(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]], tmp_path: Path
) -> None:
    test_worker_factory(tacore.backend, "coop", 1)
    _wait_for_method(tacore, "test.cooperative")
    seen, queued_seen = tmp_path / "seen", tmp_path / "queued-seen"
    sock = _dealer(tacore.frontend)
    try:
        _send(sock, "running", "test.cooperative", {"ms": 10_000, "path": str(seen)})
        wait_until(lambda: any(c["request_id"] == "running" for w in tacore.status()["workers"]
                               for c in w["current"]), 5, "the call running")
        _send(sock, "waiting", "test.cooperative", {"ms": 10_000, "path": str(queued_seen)})
        wait_until(lambda: tacore.status()["queue_depth"] == 1, 5, "the second call queued (credit 1)")
        cancelled_at = time.monotonic()
        on_queue = raw_call(tacore.frontend, {"method": "broker.cancel", "params": {"request_id": "waiting"}})
        on_worker = raw_call(tacore.frontend, {"method": "broker.cancel",
                                               "params": {"request_id": "running", "reason": "user pressed stop"}})
        replies = _replies(sock, 2, timeout_s=5)
    finally:
        sock.close()
    assert on_queue["data"] == {"request_id": "waiting", "cancelled": True, "state": "queued"}
    assert on_worker["data"] == {"request_id": "running", "cancelled": True, "state": "dispatched"}
    waiting, running = replies["waiting"][1]["error"], replies["running"][1]["error"]
    assert (waiting["code"], waiting["details"]["ran"]) == ("CANCELLED", False)
    assert (running["code"], running["details"]["ran"], running["retryable"]) == ("CANCELLED", None, False)
    assert replies["running"][0] - cancelled_at < 1.0
    # write_text creates the file before it writes the line: wait for the whole line, not the file
    wait_until(lambda: seen.exists() and seen.read_text().endswith("\n"), 2, "the handler to notice the cancel")
    assert seen.read_text() == "client False user pressed stop\n"
    assert not queued_seen.exists(), "the cancelled queued call ran"
    again = raw_call(tacore.frontend, {"method": "broker.cancel", "params": {"request_id": "running"}})
    assert again["data"]["cancelled"] is False
    bad = raw_call(tacore.frontend, {"method": "broker.preempt", "params": {"request_id": "x"}})
    assert bad["error"]["code"] == "INVALID_PARAMS" and bad["error"]["details"][0]["field"] == "reason"
    wait_until(lambda: tacore.status()["counters"]["late_replies"] == 1, 3, "the handler's late reply dropped")


def test_a_preempted_handler_hands_back_what_its_worker_holds_so_the_urgent_call_runs_next(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]], tmp_path: Path
) -> None:
    test_worker_factory(tacore.backend, "solo", 4)
    _wait_for_method(tacore, "test.cooperative")
    sock = _dealer(tacore.frontend)
    try:
        for i in range(8):  # measured fast: the broker may queue more of it behind other work at the worker
            _send(sock, f"warm-{i}", "test.cooperative", {"ms": 0, "path": str(tmp_path / f"warm-{i}")})
        assert len(_replies(sock, 8)) == 8
        for name in ("victim", "behind"):  # two long calls at the one worker: one runs, one waits there
            _send(sock, name, "test.cooperative", {"ms": 4_000, "path": str(tmp_path / name)}, priority=9)
        wait_until(lambda: tacore.status()["inflight"] == 2 and tacore.status()["queue_depth"] == 0, 5,
                   "both long calls at the worker")
        _send(sock, "urgent", "test.cooperative", {"ms": 0, "path": str(tmp_path / "urgent")}, priority=0)
        preempted_at = time.monotonic()
        raw_call(tacore.frontend, {"method": "broker.preempt",
                                   "params": {"request_id": "victim", "reason": "urgent work"}})
        replies = _replies(sock, 2, timeout_s=5)
        # looked at before the cancel below: once the urgent call is done, the broker may start ``behind``
        # at once, and cancelling it then writes its file
        behind_ended = (tmp_path / "behind").exists()
    finally:
        raw_call(tacore.frontend, {"method": "broker.cancel", "params": {"request_id": "behind"}})  # a quick stop
        sock.close()
    assert replies["victim"][1]["error"]["code"] == "CANCELLED"
    assert "urgent" in replies, "the urgent call waited behind the long call the worker held"
    assert replies["urgent"][0] - preempted_at < 2.0
    assert (tmp_path / "victim").read_text().startswith("preempt ")
    assert not behind_ended  # handed back, queued again behind the urgent call: not done yet
    assert tacore.status()["counters"]["handed_back"] >= 1


def test_a_running_handler_sees_its_deadline_on_its_context(
    tacore: TACoreProcess, test_worker_factory: Callable[..., Popen[bytes]], tmp_path: Path
) -> None:
    test_worker_factory(tacore.backend, "coop", 1)
    _wait_for_method(tacore, "test.cooperative")
    seen = tmp_path / "seen"
    reply = raw_call(tacore.frontend, {"request_id": "d", "method": "test.cooperative", "timeout_ms": 300,
                                       "params": {"ms": 10_000, "path": str(seen)}})
    assert reply["error"]["code"] == "TIMEOUT" and reply["error"]["retryable"] is True  # idempotent
    wait_until(lambda: seen.exists() and seen.read_text().endswith("\n"), 2, "the handler to see its deadline")
    assert seen.read_text().split()[:2] == ["deadline", "True"]


def test_sigterm_stops_a_worker_with_a_hung_handler_after_the_grace(
    tacore_factory: Callable[..., TACoreProcess]
) -> None:
    broker = tacore_factory(["broker", "--no-request-log"], **POOL_ENV)
    pool = tacore_factory(["worker", "--count", "1", "--connect", broker.backend], **POOL_ENV)
    broker.wait_healthy(workers=1)
    sock = _dealer(broker.frontend)
    try:
        _send(sock, "hung", "test.sleep", {"ms": 60_000}, timeout_ms=30_000)
        wait_until(lambda: any(c["request_id"] == "hung" for w in broker.status()["workers"]
                               for c in w["current"]), 5, "the hung call running")
        [pid] = _pool_pids(broker).values()
        os.kill(pid, signal.SIGTERM)
        termed = time.monotonic()
        [(came, reply)] = _replies(sock, 1, timeout_s=5).values()
        wait_until(lambda: not _alive(pid), 3, "the worker process gone")
        gone = time.monotonic() - termed
    finally:
        sock.close()
    assert reply["error"]["code"] == "WORKER_LOST"  # non-idempotent and running: it may have taken effect
    assert came - termed < 2.0 and gone < 2.0, f"stopped {gone:.2f} s after SIGTERM (grace 0.3 s)"
    wait_until(lambda: len(_pool_pids(broker)) == 1 and pid not in _pool_pids(broker).values(), 5,
               "the pool's replacement")
    assert pool.proc is not None and pool.proc.poll() is None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False
