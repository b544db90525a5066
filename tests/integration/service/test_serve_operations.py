"""``tacore serve --demo`` as an operator runs it: processes named, one ready banner once everything
answers, TACore's own traffic kept out of the user figures, and a Ctrl-C that drains, stops every
process in order without a warning, and explains its closing figures.

One service is started for the module; the tests before ``stopped`` read it running, those after it
read what its orderly stop left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from clients import LazyPirateClient
from tacore.service import DEMO_SYMBOLS, DEMO_US_SYMBOLS
from tests.support.ports import free_port
from tests.support.processes import ROOT, TACoreProcess, raw_call, wait_until

pytestmark = pytest.mark.timeout(180)

_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+)")


@dataclass
class Demo:
    tacore: TACoreProcess
    api: str
    banner_seen_at: float  # time.time() when the banner was first in the output
    health_at_banner: int
    children: list[psutil.Process]


@dataclass
class Stopped:
    code: int | None
    stop_sent_at: float
    output: str
    sleeper_reply: dict[str, Any] = field(default_factory=dict)
    refused_reply: dict[str, Any] = field(default_factory=dict)
    leftovers: list[psutil.Process] = field(default_factory=list)


def log_lines(tacore: TACoreProcess, name: str = "tacoreservice.log") -> list[tuple[float, str, str]]:
    """(epoch time, level, line) of each line of a log file."""
    out = []
    for line in (Path(tacore.env["LOG_DIR"]) / name).read_text().splitlines():
        match = _LOG_TIME.match(line)
        if match:
            out.append((datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp(), match[2], line))
    return out


def first_time(tacore: TACoreProcess, needle: str) -> float:
    times = [t for t, _, line in log_lines(tacore) if needle in line]
    assert times, f"no log line with {needle!r}"
    return times[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    # the production heartbeat (1 s, not the tests' 200 ms): at a load average near 20 on the shared 2 cores, a
    # data agent busy with the demo's history fetch could miss 600 ms of beats, and the stop would log it
    tacore = TACoreProcess(tmp_path_factory.mktemp("demo"), ["serve", "--demo"],
                           env={"WORKER_COUNT": "2", "HEARTBEAT_INTERVAL_MS": "1000"})
    tacore.start()
    api = f"http://127.0.0.1:{tacore.ports['API_PORT']}"
    try:
        def banner() -> bool:
            assert tacore.proc is not None and tacore.proc.poll() is None, tacore.output()[-3000:]
            return " is ready (" in tacore.output()

        wait_until(banner, 120, "the ready banner", interval=0.05)
        seen_at = time.time()
        health = httpx.get(f"{api}/health", timeout=5).status_code
        assert tacore.proc is not None
        children = psutil.Process(tacore.proc.pid).children(recursive=True)
        yield Demo(tacore, api, seen_at, health, children)
    finally:
        tacore.stop()


def test_every_process_names_itself(demo: Demo) -> None:
    assert demo.tacore.proc is not None
    titles = {Path(f"/proc/{p.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
              for p in demo.children}
    expected = {"tacore: broker", "tacore: recorder", "tacore: worker w1", "tacore: worker w2",
                "tacore: data-agent", "tacore: sidecar", "tacore: exchange-sim", "tacore: llm-sim",
                "tacore: flow-scheduler", "tacore: orders"}
    assert expected <= titles, titles
    # the children are forked from the process template (tacore.process_start); the only other process
    # is multiprocessing's resource tracker
    assert "tacore: process-template" in titles, titles
    assert all(t in expected or t == "tacore: process-template" or "multiprocessing.resource_tracker" in t
               for t in titles), titles
    supervisor = Path(f"/proc/{demo.tacore.proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert supervisor.strip() == "tacore: serve"
    ps = subprocess.run(["ps", "-ww", "-o", "args=", "--ppid", str(demo.tacore.proc.pid)],  # -ww: lines uncut
                        capture_output=True, text=True)
    direct = ps.stdout.splitlines()
    assert "tacore: process-template" in direct, direct
    assert all(line == "tacore: process-template" or "multiprocessing.resource_tracker" in line for line in direct)


def test_one_ready_banner_names_every_endpoint_directory_and_streamed_symbol(demo: Demo) -> None:
    output = demo.tacore.output()
    assert output.count(" is ready (") == 1
    banner = output[output.index(" is ready ("):]
    ports, env = demo.tacore.ports, demo.tacore.env
    for text in (f"tcp://127.0.0.1:{ports['ZMQ_FRONTEND_PORT']}", f"tcp://127.0.0.1:{ports['ZMQ_BACKEND_PORT']}",
                 f"tcp://127.0.0.1:{ports['EVENTS_PORT']}", f"{demo.api}/", f"{demo.api}/docs",
                 str(Path(env["DATA_DIR"]).resolve()), str(Path(env["LOG_DIR"]).resolve()),
                 *DEMO_SYMBOLS, *DEMO_US_SYMBOLS, "exchange simulator", "subscriptions persist",
                 str(Path(env["DATA_DIR"]).resolve() / "data-agent" / "subscriptions.json"), "w1, w2"):
        assert text in banner, f"{text!r} not in the banner:\n{banner}"


def test_the_banner_comes_after_the_sidecar_workers_and_data_agent_answer(demo: Demo) -> None:
    ready = first_time(demo.tacore, "tacore ready in")
    assert first_time(demo.tacore, "Uvicorn running on") <= ready
    assert first_time(demo.tacore, "worker data-agent-1 ready") <= ready
    assert first_time(demo.tacore, "worker w1 ready") <= ready and first_time(demo.tacore, "worker w2 ready") <= ready
    # the sidecar answered when the banner showed (503 while its once-a-second snapshot has not yet seen the
    # data agent that the supervisor already heard from); it reports every component up within moments
    assert demo.health_at_banner in (200, 503)
    wait_until(lambda: httpx.get(f"{demo.api}/health", timeout=5).status_code == 200, 10, "every component up")
    assert demo.banner_seen_at >= ready - 1.0


def test_the_image_healthcheck_sends_a_real_request_through_the_broker(demo: Demo) -> None:
    """The Dockerfile's HEALTHCHECK command, run as written against this service."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK "))
    command = json.loads(lines[at + 1].strip().removeprefix("CMD "))
    assert command[:2] == ["tacore", "call"] and "health.check" in command and "--internal" in command
    result = subprocess.run([sys.executable, "-m", "tacore", *command[1:]], capture_output=True, text=True,
                            env=demo.tacore.env, cwd=demo.tacore.workdir, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"]["status"] == "healthy"


def test_the_services_own_calls_stay_out_of_the_user_figures(demo: Demo) -> None:
    with LazyPirateClient(demo.tacore.frontend, timeout_ms=5000) as client:
        for _ in range(3):
            assert client.call("health.check")["status"] == "healthy"
    with LazyPirateClient(demo.tacore.frontend, timeout_ms=5000, internal=True) as own:
        assert own.call("health.check")["status"] == "healthy"  # like the image's healthcheck

    def user_rows() -> list[dict[str, Any]] | None:
        page = httpx.get(f"{demo.api}/logs", params={"limit": 1000}, timeout=5).json()
        return page["items"] if page["total"] >= 3 else None

    def methods(internal: bool) -> dict[str, int]:
        rows = httpx.get(f"{demo.api}/methods", params={"internal": internal}, timeout=5).json()["methods"]
        return {r["method"]: r["count"] for r in rows}

    wait_until(lambda: methods(True).get("kline.status", 0) >= 2, 20, "the sidecar's kline.status polls")
    wait_until(lambda: methods(False).get("health.check", 0) >= 3, 10, "the user calls in the snapshot")
    user, everything = methods(False), methods(True)
    assert user.get("kline.status", 0) == 0 and user.get("kline.connections", 0) == 0, user
    assert user["health.check"] == 3  # the image's healthcheck call is TACore's own
    assert everything["kline.status"] >= 2 and everything["health.check"] >= 4

    summary = httpx.get(f"{demo.api}/metrics/summary", timeout=5).json()
    assert summary["requests_total"] == 3
    assert httpx.get(f"{demo.api}/metrics/summary", params={"internal": "true"}, timeout=5).json()[
        "requests_total"] > 3
    prom = httpx.get(f"{demo.api}/metrics", timeout=5).text
    prom_all = httpx.get(f"{demo.api}/metrics", params={"internal": "true"}, timeout=5).text
    assert 'tacore_requests_total{method="kline.status"' not in prom
    assert 'tacore_requests_total{method="health.check",status="success"} 3.0' in prom
    assert re.search(r'tacore_requests_total\{method="kline.status",status="success"\} [1-9]', prom_all)
    view = httpx.get(f"{demo.api}/dashboard/data", timeout=5).json()
    assert view["summary"]["requests_total"] == 3 and view["internal"] is False
    assert "kline.status" not in {m["method"] for m in view["methods"] if m["count"]}

    rows = wait_until(user_rows, 10, "the user calls in the request log")
    assert {r["method"] for r in rows} == {"health.check"} and not any(r["internal"] for r in rows)
    own = httpx.get(f"{demo.api}/logs", params={"origin": "internal", "limit": 1000}, timeout=5).json()["items"]
    assert own and all(r["internal"] for r in own)
    assert {"kline.status", "kline.symbols", "health.check"} <= {r["method"] for r in own}


@pytest.fixture(scope="module")
def stopped(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Stopped:
    """Ctrl-C with a request in flight; a new request while the broker drains; then the process exits."""
    tacore = demo.tacore
    assert tacore.proc is not None
    workdir = tmp_path_factory.mktemp("slow-worker")
    slow = subprocess.Popen([sys.executable, "-m", "tests.support.method_worker", tacore.backend, "slow-1"],
                            cwd=ROOT, stdout=(workdir / "out").open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "IDEMPOTENCY_URL": f"sqlite:///{workdir / 'idempotency.db'}",
                                 "HEARTBEAT_INTERVAL_MS": tacore.env["HEARTBEAT_INTERVAL_MS"]})
    result = Stopped(None, 0.0, "")
    try:
        wait_until(lambda: slow.poll() is None and "test.sleep" in tacore.status()["methods"], 60, "the test worker")
        sleeper = threading.Thread(target=lambda: result.sleeper_reply.update(raw_call(
            tacore.frontend, {"request_id": uuid.uuid4().hex, "method": "test.sleep", "params": {"ms": 3000}},
            20_000)))
        sleeper.start()
        wait_until(lambda: tacore.status()["inflight"] >= 1, 5, "the slow request in flight")
        result.stop_sent_at = time.time()
        tacore.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        wait_until(lambda: tacore.status()["draining"], 10, "the broker draining", interval=0.02)
        result.refused_reply = raw_call(tacore.frontend, {"request_id": "late", "method": "health.check"})
        sleeper.join(20)
        result.code = tacore.proc.wait(60)
        result.output = tacore.output()
        _, result.leftovers = psutil.wait_procs(demo.children, timeout=5)
    finally:
        slow.terminate()
        slow.wait(10)
    return result


def test_ctrl_c_answers_the_request_in_flight_and_refuses_new_ones(stopped: Stopped) -> None:
    assert stopped.sleeper_reply["status"] == "success", stopped.sleeper_reply
    refused = stopped.refused_reply
    assert refused["status"] == "error" and refused["error"]["code"] == "UNAVAILABLE", refused
    assert refused["error"]["retryable"] is True and refused["error"]["details"] == {"reason": "stopping"}


def test_ctrl_c_stops_every_process_in_order_without_a_warning(demo: Demo, stopped: Stopped) -> None:
    assert stopped.code == 0, stopped.output[-3000:]
    assert not stopped.leftovers, f"processes left running: {stopped.leftovers}"
    lines = log_lines(demo.tacore) + log_lines(demo.tacore, "worker.log")
    after = [(t, level, line) for t, level, line in lines if t >= stopped.stop_sent_at - 0.01]
    assert after, "nothing logged during the stop"
    assert not [line for _, level, line in after if level in ("WARNING", "ERROR", "CRITICAL")]

    def when(needle: str) -> float:
        return first_time(demo.tacore, needle)

    order = ["monitoring sidecar stopped", "broker draining", "worker w1 (pid", "data agent stopped",
             "recorder stopped", "broker stopped"]
    times = [when(needle) for needle in order]
    assert times == sorted(times), list(zip(order, times, strict=True))


def test_the_closing_summary_explains_each_figure(demo: Demo, stopped: Stopped) -> None:
    summary = stopped.output[stopped.output.index("TACore stopped after"):]
    answered = re.search(r"requests answered +(\d+) from clients \((\d+) succeeded, (\d+) answered with an error\)",
                         summary)
    assert answered, summary
    total, ok, errors = (int(g) for g in answered.groups())
    assert total == ok + errors and ok >= 1 and errors >= 1  # the slow call; the one refused while stopping
    for phrase in ("more were TACore's own", "passed their deadline in the queue", "1 refused while stopping",
                   "lost with a worker", "answered without running twice", "rows sent to the recorder",
                   "restarts              none"):
        assert phrase in summary, f"{phrase!r} not in:\n{summary}"
    broker_line = next(line for _, _, line in log_lines(demo.tacore) if "broker stopped:" in line)
    assert "accepted and answered" in broker_line and "{" not in broker_line  # words, not a dict dump


def test_call_with_nothing_listening_names_the_endpoint_it_tried(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "tacore", "call", "health.check", "--endpoint", endpoint],
                            capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert result.returncode == 3
    assert f"no TACore service answered at {endpoint}" in result.stderr
    assert "nothing is listening there" in result.stderr and "tacore serve" in result.stderr
    assert time.monotonic() - started < 10  # said at once, not after the retries' timeouts
