"""Keys off, on loopback (the default): a rogue DEALER on the worker port still cannot impersonate a live
worker or redefine a live method; it gets a DISCONNECT with the reason and never a request."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import rogue
from tests.support.processes import TACoreProcess, raw_call


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TACoreProcess]:
    proc = TACoreProcess(tmp_path_factory.mktemp("loopback"),
                         ["serve", "--no-data-agent", "--no-api", "--no-flows", "--no-orders"]).start()
    try:
        proc.wait_healthy(workers=2)
        yield proc
    finally:
        proc.stop()


def _pool(tacore: TACoreProcess) -> dict[str, int]:
    return {w["worker_id"]: w["pid"] for w in tacore.status()["workers"] if w["state"] != "dead"}


def _calls_all_served_by(tacore: TACoreProcess, pids: set[int], count: int = 20) -> None:
    for _ in range(count):
        reply = raw_call(tacore.frontend, {"request_id": uuid.uuid4().hex, "method": "health.check"})
        assert reply["status"] == "success" and reply["data"]["pid"] in pids


def test_a_rogue_dealer_cannot_take_a_live_worker_id(loopback: TACoreProcess) -> None:
    pool = _pool(loopback)
    victim = sorted(pool)[0]
    sock = rogue.dealer(loopback.backend)
    try:
        rogue.send_ready(sock, victim, {"health.check": {"idempotent": True}})
        received = rogue.messages(sock, 2000)
        _calls_all_served_by(loopback, set(pool.values()))
        received += rogue.messages(sock, 200)
    finally:
        sock.close()
    reason = rogue.disconnect_reason(received)
    assert reason is not None and f"worker id {victim!r} is live on another connection" in reason
    assert all(frames[0] != rogue.wp.REQUEST for frames in received)
    assert _pool(loopback) == pool
    assert f"worker {victim} refused: worker id {victim!r} is live" in loopback.output()


@pytest.mark.parametrize(("declaration", "says"), [
    ({"idempotent": False}, "idempotent=False"),
    ({"idempotent": True, "role": "admin"}, "role admin"),
])
def test_a_rogue_dealer_cannot_redefine_a_live_method(loopback: TACoreProcess, declaration: dict[str, Any],
                                                       says: str) -> None:
    pool = _pool(loopback)
    refused_before = loopback.status()["counters"]["workers_refused"]
    sock = rogue.dealer(loopback.backend)
    try:
        rogue.send_ready(sock, f"rogue-{uuid.uuid4().hex[:6]}", {"health.check": declaration})
        received = rogue.messages(sock, 2000)
        _calls_all_served_by(loopback, set(pool.values()), 10)
        received += rogue.messages(sock, 200)
    finally:
        sock.close()
    reason = rogue.disconnect_reason(received)
    assert reason is not None and says in reason
    assert all(frames[0] != rogue.wp.REQUEST for frames in received)
    status = loopback.status()
    assert status["auth"] == "none"
    assert status["methods"]["health.check"] == {"idempotent": True, "workers": 2}
    assert status["counters"]["workers_refused"] == refused_before + 1
    assert _pool(loopback) == pool
