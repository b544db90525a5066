"""A real worker process against a raw ROUTER: its heartbeats keep coming when it is idle on a saturated
machine and while a long handler runs, so the broker never takes a live worker for dead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from tacore.protocol import worker as wp

LIVENESS_S = 0.6  # the test worker beats every 200 ms; three intervals of silence make it dead


@pytest.fixture
def router() -> Iterator[tuple[zmq.Socket[Any], str]]:
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close()


@pytest.fixture
def cpu_hogs() -> Iterator[Callable[[], None]]:
    """Busy loops, one more than there are cores, so every thread of the worker competes for a CPU."""
    hogs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        hogs.extend(subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range((os.cpu_count() or 1) + 1))

    yield start
    for hog in hogs:
        hog.kill()
        hog.wait()


def _beat_gaps(sock: zmq.Socket[Any], identity: bytes, seconds: float) -> tuple[list[float], list[bytes]]:
    """Largest silences between the worker's messages over ``seconds`` (the broker beats every 200 ms too)."""
    gaps: list[float] = []
    replies: list[bytes] = []
    last = time.monotonic()
    next_broker_beat = last
    end = last + seconds
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_broker_beat:
            sock.send_multipart([identity, wp.HEARTBEAT, b"{}"])
            next_broker_beat = now + 0.2
        if sock.poll(20):
            frames = sock.recv_multipart()
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            if frames[1][:wp.COMMAND_LENGTH] == wp.REPLY:
                replies.append(frames[1])
    gaps.append(time.monotonic() - last)
    return gaps, replies


def test_an_idle_worker_and_one_in_a_long_handler_keep_beating_on_a_saturated_machine(
    router: tuple[zmq.Socket[Any], str], test_worker_factory: Callable[..., subprocess.Popen[bytes]],
    cpu_hogs: Callable[[], None],
) -> None:
    sock, endpoint = router
    test_worker_factory(endpoint, "beater", 2)
    assert sock.poll(10_000), "the worker never said READY"
    identity, command, *_ = sock.recv_multipart()
    assert command == wp.READY
    cpu_hogs()

    idle_gaps, _ = _beat_gaps(sock, identity, 3.0)
    request = json.dumps({"request_id": "long", "method": "test.sleep", "params": {"ms": 2000}}).encode()
    sock.send_multipart([identity, wp.pack_requests([(1, 10_000, request)])])
    busy_gaps, replies = _beat_gaps(sock, identity, 3.0)

    assert max(idle_gaps) < LIVENESS_S, f"idle worker went silent for {max(idle_gaps):.2f} s"
    assert max(busy_gaps) < LIVENESS_S, f"worker in a 2 s handler went silent for {max(busy_gaps):.2f} s"
    assert len(replies) == 1 and [ok for _, ok, *_ in wp.iter_replies(replies[0])] == [True]
