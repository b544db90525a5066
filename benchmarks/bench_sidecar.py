"""Sidecar figures: ``GET /metrics`` and ``GET /workers`` latency while the broker is under load, and a
100,000-request run after which every request must be in ``/logs``.

Starts ``tacore serve --no-data-agent`` on free loopback ports in a temporary directory, drives load
with the asyncio client (64 in flight) from a separate process, and measures the sidecar from this
one with httpx. Run: ``python benchmarks/bench_sidecar.py [--requests 100000] [--load-seconds 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import httpx

API_KEY = "bench-key"


def free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    ports = [s.getsockname()[1] for s in socks]
    for sock in socks:
        sock.close()
    return ports


async def _drive(endpoint: str, inflight: int, seconds: float | None, total: int | None) -> dict[str, Any]:
    from clients import AsyncClient, RequestTimeout

    ok = errors = timeouts = 0
    issued = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    started = time.perf_counter()

    async with AsyncClient(endpoint, timeout_ms=30_000, retries=0) as client:
        async def lane() -> None:
            nonlocal ok, errors, timeouts, issued
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if total is not None:
                    if issued >= total:
                        return
                    issued += 1
                try:
                    reply = await client.request("health.check", {})
                except RequestTimeout:
                    timeouts += 1
                    continue
                if reply.get("status") == "success":
                    ok += 1
                else:
                    errors += 1

        await asyncio.gather(*(lane() for _ in range(inflight)))
    elapsed = time.perf_counter() - started
    done = ok + errors
    return {"ok": ok, "errors": errors, "timeouts": timeouts, "seconds": round(elapsed, 3),
            "rps": round(done / elapsed, 1) if elapsed else None}


def _load_process(endpoint: str, inflight: int, seconds: float | None, total: int | None,
                  out: Queue[dict[str, Any]]) -> None:
    out.put(asyncio.run(_drive(endpoint, inflight, seconds, total)))


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50_ms": round(pick(0.50), 3), "p95_ms": round(pick(0.95), 3),
            "p99_ms": round(pick(0.99), 3), "max_ms": round(ordered[-1], 3),
            "mean_ms": round(statistics.fmean(ordered), 3)}


def start_service(tmp: Path, workers: int) -> tuple[subprocess.Popen[bytes], str, str]:
    ports = free_ports(5)
    (tmp / "none.yaml").write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "ZMQ_", "TACORE"))}
    env.update({
        "ZMQ_FRONTEND_PORT": str(ports[0]), "ZMQ_BACKEND_PORT": str(ports[1]), "EVENTS_PORT": str(ports[2]),
        "RECORDER_PORT": str(ports[3]), "API_PORT": str(ports[4]), "DATABASE_PATH": str(tmp / "log.db"),
        "LOG_DIR": str(tmp / "logs"), "DATA_DIR": str(tmp), "API_KEY": API_KEY, "WORKER_COUNT": str(workers),
        "TACORE_CONFIG": str(tmp / "none.yaml"), "TACORESERVICE_LOG_LEVEL": "WARNING",
    })
    with (tmp / "serve.out").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tacore", "serve", "--no-data-agent"], cwd=tmp, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{ports[4]}"
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=base, timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if http.get("/health").status_code == 200:
                    return proc, base, f"tcp://127.0.0.1:{ports[0]}"
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    stop_service(proc)
    raise SystemExit(f"service did not become healthy; see {tmp / 'serve.out'}")


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def sidecar_under_load(base: str, endpoint: str, inflight: int, seconds: float, gap_s: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    out: Queue[dict[str, Any]] = ctx.Queue()
    load = ctx.Process(target=_load_process, args=(endpoint, inflight, seconds, None, out))
    load.start()
    # "/__control__" is a 404 that does no work: the host's own scheduling floor under the same load
    timings: dict[str, list[float]] = {"/metrics": [], "/workers": [], "/__control__": []}
    statuses: dict[str, set[int]] = {path: set() for path in timings}
    with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=5) as http:
        time.sleep(1.0)  # let the load reach its pace
        end = time.monotonic() + seconds - 2.0
        paths = list(timings)
        while time.monotonic() < end:
            random.shuffle(paths)  # the first probe after a pause pays the wake-up: share it out fairly
            for path in paths:
                started = time.perf_counter()
                reply = http.get(path)
                timings[path].append((time.perf_counter() - started) * 1000.0)
                statuses[path].add(reply.status_code)
            time.sleep(gap_s)
    load_result = out.get(timeout=seconds + 60)
    load.join(10)
    return {"load": load_result, **{path: {**percentiles(v), "statuses": sorted(statuses[path])}
                                    for path, v in timings.items()}}


def sidecar_idle(base: str, probes: int, gap_s: float) -> dict[str, Any]:
    timings: dict[str, list[float]] = {"/metrics": [], "/workers": []}
    with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=5) as http:
        for _ in range(probes):
            for path in timings:
                started = time.perf_counter()
                http.get(path)
                timings[path].append((time.perf_counter() - started) * 1000.0)
            time.sleep(gap_s)
    return {path: percentiles(v) for path, v in timings.items()}


def full_log_run(base: str, endpoint: str, inflight: int, total: int, wait_s: float) -> dict[str, Any]:
    since = time.time()
    load = asyncio.run(_drive(endpoint, inflight, None, total))
    until = time.time()
    answered = load["ok"] + load["errors"]
    params: dict[str, str | float] = {"method": "health.check", "since": since - 0.001, "until": until + 0.001,
                                      "limit": 1}
    with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=30) as http:
        started = time.monotonic()
        logged = -1
        while time.monotonic() - started < wait_s:
            logged = http.get("/logs", params=params).json()["total"]
            if logged >= answered:
                break
            time.sleep(0.2)
        catch_up = time.monotonic() - started
        summary = http.get("/metrics/summary").json()
    return {"requests": total, "answered": answered, **load, "in_logs": logged, "missing": answered - logged,
            "log_catch_up_s": round(catch_up, 2), "service_summary": {
                k: summary.get(k) for k in ("requests_total", "success_rate", "avg_response_ms",
                                            "p95_response_ms", "p99_response_ms")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--load-seconds", type=float, default=15.0)
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between two sidecar probes")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-sidecar-") as tmpdir:
        proc, base, endpoint = start_service(Path(tmpdir), args.workers)
        try:
            idle = sidecar_idle(base, 200, args.gap_ms / 1000.0)
            under_load = sidecar_under_load(base, endpoint, args.inflight, args.load_seconds, args.gap_ms / 1000.0)
            full = full_log_run(base, endpoint, args.inflight, args.requests, wait_s=120.0)
        finally:
            stop_service(proc)
    figures = {"machine": {"cpus": os.cpu_count(), "workers": args.workers, "inflight": args.inflight},
               "sidecar_idle": idle, "sidecar_under_load": under_load, "log_completeness": full}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    ok = full["missing"] == 0 and under_load["/metrics"]["statuses"] == [200]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
