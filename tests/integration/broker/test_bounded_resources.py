"""What a client can make the broker hold is bounded: oversized frames, floods of method names, connections.

Each test reproduces one finding of issue 13 against a real ``tacore`` process: ~1 MB method names took
the broker from 100 MiB to 3.4 GiB, 20,000 short unknown names made ``/metrics`` 70 MB, three 500 MB
frames peaked at 2.2 GiB, and connections past the descriptor limit went unanswered without a word.
"""

from __future__ import annotations

import json
import resource
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select

from tacore.store.request_log import request_log
from tests.support.processes import TACoreProcess, raw_call, wait_until

MIB = 1024 * 1024


def _dealer(endpoint: str) -> zmq.Socket[Any]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(endpoint)
    return sock


def _replies(sock: zmq.Socket[Any], count: int, timeout_s: float) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(replies) < count and time.monotonic() < deadline:
        if sock.poll(200):
            replies.append(json.loads(sock.recv_multipart()[-1]))
    return replies


def _broker(tacore: TACoreProcess) -> psutil.Process:
    return psutil.Process(tacore.status()["pid"])


@pytest.mark.timeout(90)
def test_oversized_frames_close_the_connection_unread_and_broker_memory_stays_flat(
        tacore_factory: Callable[..., TACoreProcess]) -> None:
    tacore = tacore_factory(["broker", "--no-request-log"])
    tacore.wait_healthy(workers=0)
    broker = _broker(tacore)
    before = broker.memory_info().rss
    peak = before
    sock = _dealer(tacore.frontend)
    monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        frame = b'{"method": "health.check", "params": {"pad": "' + b"x" * (64 * MIB) + b'"}}'
        for _ in range(3):
            sock.send_multipart([b"", frame])
            for _ in range(10):
                peak = max(peak, broker.memory_info().rss)
                time.sleep(0.05)
        assert monitor.poll(5000), "the broker kept the connection of a frame over MAX_REQUEST_BYTES"
        assert not sock.poll(500), "a frame over the limit is not read, so it gets no reply"
    finally:
        sock.disable_monitor()
        monitor.close()
        sock.close()
    assert peak - before < 32 * MIB, f"oversized frames buffered: RSS {before / MIB:.0f} -> {peak / MIB:.0f} MiB"
    assert raw_call(tacore.frontend, {"method": "broker.status"})["status"] == "success"


@pytest.mark.timeout(120)
def test_unknown_method_flood_leaves_one_statistics_bucket_and_a_small_metrics_page(
        tacore_factory: Callable[..., TACoreProcess]) -> None:
    tacore = tacore_factory(["serve", "--no-data-agent"])
    tacore.wait_healthy(workers=2)
    api = f"http://127.0.0.1:{tacore.ports['API_PORT']}"
    wait_until(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 20, "the sidecar")
    broker = _broker(tacore)
    sock = _dealer(tacore.frontend)
    try:
        long_names = [f"huge.{i}.{'m' * 1_000_000}" for i in range(30)]  # ~1 MB each: refused, never kept
        for name in long_names:
            sock.send_multipart([b"", json.dumps({"request_id": f"long-{uuid.uuid4().hex}", "method": name}).encode()])
        codes = {r["error"]["code"] for r in _replies(sock, len(long_names), 30)}
        assert codes == {"INVALID_REQUEST"}
        rss_before = broker.memory_info().rss
        for i in range(20_000):
            sock.send_multipart([b"", json.dumps({"request_id": f"unknown-{i}", "method": f"no.such.{i}"}).encode()])
        replies = _replies(sock, 20_000, 60)
    finally:
        sock.close()
    assert len(replies) == 20_000 and {r["error"]["code"] for r in replies} == {"UNKNOWN_METHOD"}
    assert broker.memory_info().rss - rss_before < 24 * MIB

    started = time.perf_counter()
    metrics = raw_call(tacore.frontend, {"method": "broker.metrics"})["data"]
    assert time.perf_counter() - started < 1.0
    names = set(metrics["methods"])
    assert "(unknown)" in names and not any(name.startswith("no.such.") for name in names), sorted(names)[:10]
    assert metrics["methods"]["(unknown)"]["errors"]["UNKNOWN_METHOD"] == 20_000
    assert tacore.status()["counters"]["unknown_method"] == 20_000

    def scraped() -> str | None:
        text = httpx.get(f"{api}/metrics", timeout=5).text
        return text if 'method="(unknown)"' in text else None

    text = wait_until(scraped, 10, "the unknown-method bucket in /metrics")
    series = sum(len(family.samples) for family in text_string_to_metric_families(text))
    assert len(text) < 256 * 1024 and series < 2000, f"/metrics is {len(text)} bytes, {series} series"
    # the request log still names each request's method (its columns bound what it keeps)
    engine = create_engine(f"sqlite:///{tacore.env['DATABASE_PATH']}")
    try:
        def logged() -> int:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).where(
                    request_log.c.request_id.like("unknown-%"))).scalar_one())

        wait_until(lambda: logged() == 20_000, 20, "the flood in the request log")
        with engine.connect() as conn:
            row = conn.execute(select(request_log).where(request_log.c.request_id == "unknown-7")).one()
        assert row.method == "no.such.7" and row.error_code == "UNKNOWN_METHOD"
    finally:
        engine.dispose()


def _low_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))


@pytest.mark.timeout(60)
def test_connections_past_the_descriptor_limit_are_logged_and_counted(tmp_path: Path) -> None:
    tacore = TACoreProcess(tmp_path / "fd", ["broker", "--no-request-log"], preexec=_low_descriptor_limit).start()
    conns: list[socket.socket] = []
    try:
        tacore.wait_healthy(workers=0)
        watcher = _dealer(tacore.frontend)  # a connection made before the flood: it must keep working
        watcher.send_multipart([b"", json.dumps({"method": "broker.status"}).encode()])
        assert watcher.poll(3000)
        watcher.recv_multipart()
        port = tacore.ports["ZMQ_FRONTEND_PORT"]
        for _ in range(150):  # every accepted connection takes one of the broker's 96 descriptors
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=2))

        def refused() -> int:
            watcher.send_multipart([b"", json.dumps({"method": "broker.status"}).encode()])
            assert watcher.poll(3000), "the broker stopped answering its existing clients"
            return int(json.loads(watcher.recv_multipart()[-1])["data"]["counters"]["connections_refused"])

        count = wait_until(refused, 10, "refused connections counted in broker.status")
        assert count > 0
        log = wait_until(lambda: "connection(s) refused" in (text := tacore.output()) and text, 10, "the log line")
        assert "EMFILE" in log and "file descriptors: limit 96" in log
        for conn in conns:
            conn.close()
        conns.clear()
        reply = wait_until(lambda: raw_call(tacore.frontend, {"method": "broker.status"}, 1000), 10,
                           "a new client served once descriptors are free again")
        assert reply["status"] == "success"
        watcher.close()
    finally:
        for conn in conns:
            conn.close()
        tacore.stop()
