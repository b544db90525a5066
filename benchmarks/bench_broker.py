"""Broker benchmark: TACore (broker + 2 workers) against a zmq.proxy ROUTER/DEALER device with 2 REP workers.

All sides do the same JSON work for ``health.check``. The second baseline is the ZeroMQ guide's plain
Python load-balancing broker (``lbbroker``: one message per poll, no queue, deadlines or logs) with
2 REQ workers. Two more TACore rows are references: its core as plain Python (what the mypyc build of
setup.py buys) and ``BROKER_SPIN_US=0`` (the broker always sleeps in poll: what the spin buys and costs).

Each TACore row runs in a phase of its own, beside a zmq.proxy and an lbbroker started for it, and its
ratios are to those: with every row's service up at once, the idle services' timers (~235 wake-ups a
second each) ran on the 2 cores during every round, and TACore's p99 read 1.0-1.2x lbbroker's where
alone it read 0.77-0.84x (2026-12-06, 2 vCPU AMD EPYC guest). Within a phase rounds are interleaved,
each target in turn, and each round starts with the next target, so machine noise hits all alike and
none always follows the same one; a round starts once the machine has gone quiet (``settle``). Measures
p50/p99 latency with one REQ client, throughput with the asyncio client at 64 in flight, and CPU time per
request of each broker process (for TACore: the broker's own process, not its workers or recorder).
``--curve`` adds TACore with keys on (``BROKER_CURVE``: CurveZMQ on both ports, a ZAP handler, the
role check per request) and prints its figures against plaintext TACore (target: throughput >= 0.7x).

With ``--non-idempotent`` one more TACore row calls ``bench.health_once`` (benchmarks/bench_methods.py):
the same work declared not idempotent, so each request also claims and completes its durable
idempotency record (SQLite by default): what exactly-once across restarts costs.

``--breakdown`` runs instead what each guarantee costs, switched on one at a time through the
operator's own switches, each row in a phase of its own beside the two baselines:

- ``minimal``: ``tacore broker --no-request-log`` and ``tacore worker --count 2`` with
  ``DEDUPE_MAX_ENTRIES=0``. What cannot be switched off is in every row, this one included:
  deadlines at the queue and after dispatch, the cancel verb, bounded queues and frames,
  heartbeats, per-method statistics;
- ``+ dedupe``: replies kept for retries (``DEDUPE_MAX_ENTRIES`` as default);
- ``+ request log``: the broker ships a record per request and a recorder process writes them;
- ``+ keys (CURVE)``: ``BROKER_CURVE``: CurveZMQ on both ports and the role check per request;
- ``+ exactly once``: the method is not idempotent, so each call claims and completes its durable
  idempotency record (``bench.health_once``, benchmarks/bench_methods.py);
- ``all on (tacore serve)``: TACore as installed, the default rows' ``tacore``.

    python benchmarks/bench_broker.py [--rounds 5] [--latency-requests 3000] [--throughput-seconds 3]
                                      [--non-idempotent] [--curve] [--breakdown]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clients import AsyncClient, CurveKeys  # noqa: E402
from tacore.auth.keyring import KeyKind, Keyring  # noqa: E402
from tacore.auth.roles import Role  # noqa: E402

PROXY_SCRIPT = r"""
import sys, zmq
ctx = zmq.Context()
front = ctx.socket(zmq.ROUTER); front.bind(sys.argv[1])
back = ctx.socket(zmq.DEALER); back.bind(sys.argv[2])
print("ready", flush=True)
zmq.proxy(front, back)
"""

# The JSON work of TACore's health.check, done by the workers of both baselines.
_HEALTH_WORK = r"""
import os, sys, time, orjson, zmq
started = time.time()
worker_id = sys.argv[2]

def health_check(body):
    t0 = time.perf_counter()
    request = orjson.loads(body)
    params = request.get("params") or {}
    detailed = bool(params.get("detailed", False))
    data = {"status": "healthy", "version": "0.1.0", "uptime_s": round(time.time() - started, 3),
            "worker_id": worker_id, "pid": os.getpid()}
    reply = {"status": "success", "request_id": request.get("request_id"), "data": data, "error": None,
             "processing_time_ms": round((time.perf_counter() - t0) * 1000, 3), "timestamp": round(time.time(), 3)}
    return orjson.dumps(reply)
"""

REP_WORKER_SCRIPT = _HEALTH_WORK + r"""
sock = zmq.Context().socket(zmq.REP); sock.connect(sys.argv[1])
while True:
    sock.send(health_check(sock.recv()))
"""

# The ZeroMQ guide's load-balancing broker (lbbroker), with REQ workers that say READY first.
PLAIN_BROKER_SCRIPT = r"""
import sys, zmq
ctx = zmq.Context()
front = ctx.socket(zmq.ROUTER); front.bind(sys.argv[1])
back = ctx.socket(zmq.ROUTER); back.bind(sys.argv[2])
idle = []
poller_workers = zmq.Poller(); poller_workers.register(back, zmq.POLLIN)
poller_both = zmq.Poller(); poller_both.register(back, zmq.POLLIN); poller_both.register(front, zmq.POLLIN)
print("ready", flush=True)
while True:
    events = dict((poller_both if idle else poller_workers).poll())
    if back in events:
        worker, _, client, *rest = back.recv_multipart()
        idle.append(worker)
        if client != b"READY":
            front.send_multipart([client, *rest])
    if front in events:
        client, *rest = front.recv_multipart()
        back.send_multipart([idle.pop(0), b"", client, *rest])
"""

PLAIN_WORKER_SCRIPT = _HEALTH_WORK + r"""
sock = zmq.Context().socket(zmq.REQ); sock.connect(sys.argv[1])
sock.send(b"READY")
while True:
    client, empty, body = sock.recv_multipart()
    sock.send_multipart([client, empty, health_check(body)])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def req_socket(endpoint: str, curve: CurveKeys | None = None) -> zmq.Socket[Any]:
    ctx: zmq.Context[Any] = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.apply(sock)
    sock.connect(endpoint)
    return sock


def wait_for(endpoint: str, timeout: float = 60.0, curve: CurveKeys | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock = req_socket(endpoint, curve)
        sock.send(json.dumps({"request_id": uuid.uuid4().hex, "method": "health.check", "params": {}}).encode())
        if sock.poll(500):
            reply = json.loads(sock.recv())
            sock.close()
            if reply.get("status") == "success":
                return
        else:
            sock.close()
    raise RuntimeError(f"{endpoint} did not answer health.check")


class Target:
    def __init__(self, name: str, endpoint: str, procs: list[subprocess.Popen[bytes]], cpu_pid: int,
                 core: str = "", method: str = "health.check", curve: CurveKeys | None = None) -> None:
        self.name = name
        self.method = method
        self.core = core
        self.curve = curve
        self.endpoint = endpoint
        self.procs = procs
        self.cpu = psutil.Process(cpu_pid)

    def spin_counters(self) -> tuple[int, int] | None:
        """(spins, spin pauses) of a TACore broker so far; None for the baselines."""
        if not self.core:
            return None
        counters = broker_status(self.endpoint, self.curve)["counters"]
        return int(counters["spins"]), int(counters["spin_pauses"])

    def cpu_seconds(self) -> float:
        times = self.cpu.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_tacore(workdir: Path, name: str = "tacore", method: str = "health.check", curve: bool = False,
                 **extra_env: str) -> Target:
    workdir = workdir / name
    workdir.mkdir()
    keys = None
    if curve:  # keys on: a client key (admin: the benchmark reads broker.status), made before the broker starts
        keyring = Keyring(workdir / "keys")
        keys = CurveKeys.load(keyring.generate("bench", KeyKind.CLIENT, Role.ADMIN).secret_file)
        extra_env = {**extra_env, "BROKER_CURVE": "true", "KEYS_DIR": str(keyring.directory)}
    ports = {name: free_port() for name in ("ZMQ_FRONTEND_PORT", "ZMQ_BACKEND_PORT", "EVENTS_PORT", "RECORDER_PORT",
                                            "API_PORT")}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "TACORESERVICE_LOG_LEVEL": "WARNING",
           "DATABASE_PATH": str(workdir / "bench.db"), "LOG_DIR": str(workdir / "logs"), "WORKER_COUNT": "2",
           **extra_env}
    proc = subprocess.Popen([sys.executable, "-m", "tacore", "serve", "--no-data-agent", "--no-api", "--no-flows"],
                            env=env, cwd=workdir)
    return _serving(name, f"tcp://127.0.0.1:{ports['ZMQ_FRONTEND_PORT']}", [proc], method, keys)


def _serving(name: str, endpoint: str, procs: list[subprocess.Popen[bytes]], method: str,
             keys: CurveKeys | None) -> Target:
    """The target once it answers; its CPU is the broker's process, as ``broker.status`` names it."""
    wait_for(endpoint, 60, keys)  # a busy shared machine can take that long to start a service
    status = broker_status(endpoint, keys)
    return Target(name, endpoint, procs, status["pid"], status["core"], method, keys)


def broker_status(endpoint: str, keys: CurveKeys | None) -> dict[str, Any]:
    sock = req_socket(endpoint, keys)
    sock.send(json.dumps({"request_id": uuid.uuid4().hex, "method": "broker.status"}).encode())
    status: dict[str, Any] = json.loads(sock.recv())["data"]
    sock.close()
    return status


_RECORDER = "from tacore.recorder import run; from tacore.settings import load_settings; run(load_settings())"


def start_parts(workdir: Path, name: str, *, dedupe: bool = False, request_log: bool = False, curve: bool = False,
                method: str = "health.check", **extra_env: str) -> Target:
    """TACore from its parts, as an operator runs them apart: ``tacore broker``, ``tacore worker --count 2``
    and, with the request log, the recorder; every switchable guarantee off unless asked for."""
    workdir = workdir / name
    workdir.mkdir()
    ports = {name: free_port() for name in ("ZMQ_FRONTEND_PORT", "ZMQ_BACKEND_PORT", "RECORDER_PORT")}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "TACORESERVICE_LOG_LEVEL": "WARNING",
           "DATABASE_PATH": str(workdir / "bench.db"), "LOG_DIR": str(workdir / "logs"),
           "DATA_DIR": str(workdir / "data"), **({} if dedupe else {"DEDUPE_MAX_ENTRIES": "0"}), **extra_env}
    keys = None
    if curve:
        keyring = Keyring(workdir / "keys")
        keyring.ensure_server()
        keys = CurveKeys.load(keyring.generate("bench", KeyKind.CLIENT, Role.ADMIN).secret_file)
        env.update(BROKER_CURVE="true", KEYS_DIR=str(keyring.directory),
                   WORKER_KEY=str(keyring.generate("bench-workers", KeyKind.WORKER, None).secret_file))
    tacore = [sys.executable, "-m", "tacore"]
    procs = [subprocess.Popen([*tacore, "broker", *([] if request_log else ["--no-request-log"])], env=env,
                              cwd=workdir)]
    if request_log:
        procs.append(subprocess.Popen([sys.executable, "-c", _RECORDER], env=env, cwd=workdir))
    procs.append(subprocess.Popen([*tacore, "worker", "--count", "2", "--connect",
                                   f"tcp://127.0.0.1:{ports['ZMQ_BACKEND_PORT']}"], env=env, cwd=workdir))
    return _serving(name, f"tcp://127.0.0.1:{ports['ZMQ_FRONTEND_PORT']}", procs, method, keys)


def start_baseline(name: str, broker_script: str, worker_script: str) -> Target:
    """A broker script and 2 worker scripts, each a process of its own, on free ports."""
    front, back = free_port(), free_port()
    broker = subprocess.Popen([sys.executable, "-c", broker_script, f"tcp://127.0.0.1:{front}",
                               f"tcp://127.0.0.1:{back}"], stdout=subprocess.PIPE)
    assert broker.stdout is not None
    broker.stdout.readline()
    workers = [subprocess.Popen([sys.executable, "-c", worker_script, f"tcp://127.0.0.1:{back}", f"{name}-{i}"])
               for i in (1, 2)]
    endpoint = f"tcp://127.0.0.1:{front}"
    wait_for(endpoint)
    return Target(name, endpoint, [broker, *workers], broker.pid)


def start_proxy() -> Target:
    return start_baseline("zmq.proxy", PROXY_SCRIPT, REP_WORKER_SCRIPT)


def start_plain_broker() -> Target:
    return start_baseline("plain", PLAIN_BROKER_SCRIPT, PLAIN_WORKER_SCRIPT)


def latency_round(endpoint: str, requests: int, method: str = "health.check",
                  curve: CurveKeys | None = None) -> list[float]:
    sock = req_socket(endpoint, curve)
    samples = []
    prefix = uuid.uuid4().hex[:12]
    for i in range(requests + 100):
        body = json.dumps({"request_id": f"{prefix}-{i}", "method": method,
                           "params": {"detailed": False}}).encode()
        t0 = time.perf_counter()
        sock.send(body)
        sock.recv()
        if i >= 100:  # warm-up excluded
            samples.append((time.perf_counter() - t0) * 1e6)
    sock.close()
    return samples


async def _throughput(endpoint: str, seconds: float, in_flight: int, method: str = "health.check",
                      curve: CurveKeys | None = None) -> int:
    done = 0
    stop_at = time.monotonic() + seconds
    async with AsyncClient(endpoint, timeout_ms=10_000, retries=0, curve=curve) as client:
        async def lane() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                reply = await client.request(method, {"detailed": False})
                if reply["status"] != "success":
                    raise RuntimeError(reply)
                done += 1

        await asyncio.gather(*(lane() for _ in range(in_flight)))
    return done


def throughput_round(target: Target, seconds: float, in_flight: int) -> tuple[float, float]:
    cpu0 = target.cpu_seconds()
    t0 = time.perf_counter()
    done = asyncio.run(_throughput(target.endpoint, seconds, in_flight, target.method, target.curve))
    elapsed = time.perf_counter() - t0
    cpu = target.cpu_seconds() - cpu0
    return done / elapsed, cpu / done * 1e6


def _cpu_jiffies() -> list[int]:
    """The machine's CPU time so far by kind (the first line of /proc/stat: user nice system idle iowait irq
    softirq steal ...)."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def cpu_ticks() -> tuple[int, int]:
    """(all, steal) jiffies of the machine: on a shared VM, time the hypervisor gave to other guests."""
    fields = _cpu_jiffies()
    return sum(fields[:8]), fields[7]


#: A round starts once the machine's CPUs were at most this busy for 200 ms (``settle``).
SETTLE_BUSY = 0.1


def busy_ticks() -> tuple[int, int]:
    """(busy, all) jiffies of the machine so far (busy: neither idle nor waiting for I/O)."""
    fields = _cpu_jiffies()
    return sum(fields[:8]) - fields[3] - fields[4], sum(fields[:8])


def settle(quiet: float = SETTLE_BUSY, window_s: float = 0.2, limit_s: float = 10.0) -> float:
    """Wait until the machine's CPUs were at most ``quiet`` busy for ``window_s`` (at most ``limit_s``); returns
    the seconds waited. What one target leaves running after its round (TACore's recorder writing the rows of a
    throughput round, a baseline's queues draining) is then not measured in the next target's round."""
    started = time.monotonic()
    before = busy_ticks()
    while time.monotonic() - started < limit_s:
        time.sleep(window_s)
        after = busy_ticks()
        if (after[0] - before[0]) / max(1, after[1] - before[1]) <= quiet:
            break
        before = after
    return time.monotonic() - started


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


TARGETS = {  # name -> what the row is; the first is TACore as installed, the rest references
    "tacore": "TACore",
    "tacore-curve": "TACore, keys on (CURVE)",
    "tacore-python": "TACore, plain-Python core",
    "tacore-nospin": "TACore, BROKER_SPIN_US=0",
    "tacore-once": "TACore, non-idempotent method",
    "zmq.proxy": "zmq.proxy (baseline)",
    "plain": "plain Python lbbroker",
}
BREAKDOWN = {  # name -> row label; each guarantee alone on top of the minimal broker, then TACore as served
    "minimal": "minimal (switchable ones off)",
    "dedupe": "+ dedupe (replies kept)",
    "request-log": "+ request log (recorder)",
    "curve": "+ keys (CURVE)",
    "once": "+ exactly once (durable record)",
    "tacore": "all on (tacore serve)",
    "zmq.proxy": "zmq.proxy (baseline)",
    "plain": "plain Python lbbroker",
}
GOALS = {"p50_us": 1.2, "p99_us": 1.5, "throughput_rps": 0.4, "cpu_us_per_req": 30.0}
CURVE_THROUGHPUT_GOAL = 0.7  # keys on, against plaintext TACore in the same run


def pure_python_tree(tmp: Path) -> Path:
    """The project's packages without compiled modules: put first on PYTHONPATH, they run as plain Python."""
    tree = tmp / "pure-python"
    for package in ("tacore", "workers", "clients"):
        shutil.copytree(ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("*.so", "_compiled.json", "__pycache__"))
    return tree


Figures = dict[str, dict[str, float]]  # row name -> figure -> value


def phase_ratios(summary: Figures, baselines: dict[str, Figures]) -> Figures:
    """Each row's figures over those of zmq.proxy and of the plain lbbroker in the row's own phase."""
    keys = ("p50_us", "p99_us", "throughput_rps")
    return {name: {**{key: row[key] / baselines[name]["zmq.proxy"][key] for key in keys},
                   **{f"{key}_vs_lbbroker": row[key] / baselines[name]["plain"][key] for key in keys}}
            for name, row in summary.items()}


def report(summary: Figures, baselines: dict[str, Figures], cores: dict[str, str]) -> Figures:
    """Print one row per target with its ratios to the proxy of its phase; return the ratios."""
    ratios = phase_ratios(summary, baselines)
    print(f"\n{'':36}{'p50 latency':>18}{'p99 latency':>18}{'throughput (64)':>22}{'broker CPU':>14}")
    print(f"{'target':36}{'<= 1.2x':>18}{'<= 1.5x':>18}{'>= 0.4x':>22}{'<= 30 us':>14}")
    for name, label in TARGETS.items():
        if name not in summary:
            continue
        row, ratio = summary[name], ratios[name]
        if name in cores:
            label += f" [{cores[name]}]"
        print(f"{label:36}{row['p50_us']:9.1f} us {ratio['p50_us']:4.2f}x"
              f"{row['p99_us']:9.1f} us {ratio['p99_us']:4.2f}x"
              f"{row['throughput_rps']:10.0f} req/s {ratio['throughput_rps']:4.2f}x{row['cpu_us_per_req']:9.1f} us")
    tacore = ratios["tacore"]
    met = {
        "p50": tacore["p50_us"] <= GOALS["p50_us"], "p99": tacore["p99_us"] <= GOALS["p99_us"],
        "throughput": tacore["throughput_rps"] >= GOALS["throughput_rps"],
        "cpu": summary["tacore"]["cpu_us_per_req"] <= GOALS["cpu_us_per_req"],
    }
    print("TACore against the targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))
    print(f"TACore against the plain lbbroker of its phase: p50 {tacore['p50_us_vs_lbbroker']:.2f}x, "
          f"p99 {tacore['p99_us_vs_lbbroker']:.2f}x (no worse: "
          f"{'met' if max(tacore['p50_us_vs_lbbroker'], tacore['p99_us_vs_lbbroker']) <= 1.0 else 'MISSED'}), "
          f"throughput {tacore['throughput_rps_vs_lbbroker']:.2f}x")
    if "tacore-curve" in summary:  # each against its own phase's proxy: the two ran in different phases
        plain, curve = ratios["tacore"], ratios["tacore-curve"]
        share = curve["throughput_rps"] / plain["throughput_rps"]
        print(f"Keys on (CURVE) against plaintext TACore: throughput {share:.2f}x "
              f"(>= {CURVE_THROUGHPUT_GOAL}x: {'met' if share >= CURVE_THROUGHPUT_GOAL else 'MISSED'}), "
              f"p50 {curve['p50_us'] / plain['p50_us']:.2f}x, p99 {curve['p99_us'] / plain['p99_us']:.2f}x, "
              f"broker CPU {summary['tacore-curve']['cpu_us_per_req'] - summary['tacore']['cpu_us_per_req']:+.1f} us "
              "per request")
    return ratios


def report_breakdown(summary: Figures, baselines: dict[str, Figures], cores: dict[str, str]) -> Figures:
    """One row per guarantee: its figures, its ratios to zmq.proxy and to the plain lbbroker of its phase, and
    what it adds to the minimal broker (us of p50/p99, us of broker CPU per request, share of throughput; the
    two rows ran in different phases, so these differences carry the machine's drift between them)."""
    minimal = summary["minimal"]
    ratios = phase_ratios(summary, baselines)
    print(f"\n{'':34}{'p50 us':>9}{'x proxy':>8}{'x lb':>6}{'p99 us':>9}{'x proxy':>8}{'x lb':>6}"
          f"{'req/s':>8}{'x proxy':>8}{'CPU us':>8}  {'adds to minimal: p50 / p99 / CPU, throughput':>44}")
    for name, label in BREAKDOWN.items():
        if name not in summary:
            continue
        row, ratio = summary[name], ratios[name]
        if name in cores:
            label += f" [{cores[name][0]}]"
        adds = ""
        if name in cores and name != "minimal":
            adds = (f"{row['p50_us'] - minimal['p50_us']:+7.1f} / {row['p99_us'] - minimal['p99_us']:+7.1f} / "
                    f"{row['cpu_us_per_req'] - minimal['cpu_us_per_req']:+5.1f} us, "
                    f"{row['throughput_rps'] / minimal['throughput_rps']:.2f}x")
        print(f"{label:34}{row['p50_us']:9.1f}{ratio['p50_us']:7.2f}x{ratio['p50_us_vs_lbbroker']:5.2f}x"
              f"{row['p99_us']:9.1f}{ratio['p99_us']:7.2f}x{ratio['p99_us_vs_lbbroker']:5.2f}x"
              f"{row['throughput_rps']:8.0f}{ratio['throughput_rps']:7.2f}x{row['cpu_us_per_req']:8.1f}  {adds:>44}")
    every = ratios["tacore"]
    print("All on against the targets: "
          f"p50 no worse than lbbroker {'met' if every['p50_us_vs_lbbroker'] <= 1.0 else 'MISSED'}, "
          f"p99 no worse than lbbroker {'met' if every['p99_us_vs_lbbroker'] <= 1.0 else 'MISSED'}, "
          f"p99 <= {GOALS['p99_us']}x proxy {'met' if every['p99_us'] <= GOALS['p99_us'] else 'MISSED'}, "
          f"CPU <= {GOALS['cpu_us_per_req']:.0f} us "
          f"{'met' if summary['tacore']['cpu_us_per_req'] <= GOALS['cpu_us_per_req'] else 'MISSED'}")
    print("In every TACore row, minimal included (not switchable): deadlines in the queue and after dispatch, "
          "the cancel verb, bounded queues and frames, heartbeats, per-method statistics. [c] compiled core.")
    return ratios


def bench_methods_path(tmp: Path) -> str:
    """A PYTHONPATH entry that makes benchmarks/ importable (bench.health_once) while tacore stays the installed one."""
    path = tmp / "bench-path"
    if not path.exists():
        path.mkdir()
        (path / "benchmarks").symlink_to(ROOT / "benchmarks")
    return str(path)


def row_starters(tmp: Path, args: argparse.Namespace) -> list[Callable[[], Target]]:
    """The run's TACore rows, TACore as installed first: each is measured in a phase of its own."""
    path, registry = bench_methods_path(tmp), "benchmarks.bench_methods:build_registry"
    if args.breakdown:
        return [lambda: start_tacore(tmp),
                lambda: start_parts(tmp, "minimal"),
                lambda: start_parts(tmp, "dedupe", dedupe=True),
                lambda: start_parts(tmp, "request-log", request_log=True),
                lambda: start_parts(tmp, "curve", curve=True),
                lambda: start_parts(tmp, "once", method="bench.health_once", PYTHONPATH=path,
                                    WORKER_REGISTRY=registry)]
    pure = pure_python_tree(tmp)
    return [lambda: start_tacore(tmp),
            *([lambda: start_tacore(tmp, "tacore-curve", curve=True)] if args.curve else []),
            lambda: start_tacore(tmp, "tacore-python", PYTHONPATH=str(pure)),
            lambda: start_tacore(tmp, "tacore-nospin", BROKER_SPIN_US="0"),
            *([lambda: start_tacore(tmp, "tacore-once", "bench.health_once", PYTHONPATH=path,
                                   WORKER_REGISTRY=registry)]
              if args.non_idempotent else [])]


class Phase:
    """One TACore row measured beside freshly started baselines, with nothing else of the run up."""

    def __init__(self) -> None:
        self.summary: dict[str, dict[str, float]] = {}  # the row's and the two baselines' figures
        self.core = ""
        self.spins = (0, 0)  # the row's spins and spin pauses during its latency rounds
        self.waits: list[tuple[float, str]] = []  # (seconds settle waited, the round before it)


def run_phase(start: Callable[[], Target], args: argparse.Namespace) -> tuple[str, Phase]:
    """Interleaved rounds of the row ``start`` starts, zmq.proxy and lbbroker; all stopped after."""
    phase = Phase()
    targets: list[Target] = []
    try:
        for starter in (start, start_proxy, start_plain_broker):
            targets.append(starter())  # appended once it answers, so a failure stops those started
        row = targets[0]
        phase.core = row.core
        results: dict[str, dict[str, list[float]]] = {t.name: {"lat": [], "tput": [], "cpu": []} for t in targets}
        previous = "start-up"
        for round_no in range(args.rounds):
            order = targets[round_no % len(targets):] + targets[:round_no % len(targets)]  # no fixed slot
            for target in order:
                if args.settle:
                    phase.waits.append((settle(), previous))
                previous = f"{target.name} latency"
                spun = target.spin_counters()
                results[target.name]["lat"].extend(latency_round(target.endpoint, args.latency_requests,
                                                                 target.method, target.curve))
                after = target.spin_counters()
                if spun is not None and after is not None:
                    phase.spins = (phase.spins[0] + after[0] - spun[0], phase.spins[1] + after[1] - spun[1])
            for target in order:
                if args.settle:
                    phase.waits.append((settle(), previous))
                previous = f"{target.name} throughput"
                rate, cpu_us = throughput_round(target, args.throughput_seconds, args.in_flight)
                results[target.name]["tput"].append(rate)
                results[target.name]["cpu"].append(cpu_us)
    finally:
        for target in targets:
            target.stop()
    for name, r in results.items():
        phase.summary[name] = {"p50_us": pct(r["lat"], 0.50), "p99_us": pct(r["lat"], 0.99),
                               "throughput_rps": statistics.median(r["tput"]),
                               "cpu_us_per_req": statistics.median(r["cpu"])}
    return row.name, phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-settle", dest="settle", action="store_false",
                        help="start each round at once, not when the machine has gone quiet")
    parser.add_argument("--latency-requests", type=int, default=3000)
    parser.add_argument("--throughput-seconds", type=float, default=3.0)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--non-idempotent", action="store_true",
                        help="add a TACore row calling a non-idempotent method (durable idempotency records)")
    parser.add_argument("--curve", action="store_true", help="also run TACore with keys on (BROKER_CURVE)")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead: each guarantee switched on alone, each beside the two baselines")
    args = parser.parse_args()

    ticks0 = cpu_ticks()
    load0 = os.getloadavg()
    phases: dict[str, Phase] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for start in row_starters(Path(tmp), args):
            name, phase = run_phase(start, args)
            phases[name] = phase
    first = phases[next(iter(phases))]  # TACore as installed: its phase's baselines are the ones shown
    summary = {**{name: phase.summary[name] for name, phase in phases.items()},
               "zmq.proxy": first.summary["zmq.proxy"], "plain": first.summary["plain"]}
    baselines = {**{name: phase.summary for name, phase in phases.items()},
                 "zmq.proxy": first.summary, "plain": first.summary}
    cores = {name: phase.core for name, phase in phases.items() if phase.core}
    ratios = (report_breakdown(summary, baselines, cores) if args.breakdown
              else report(summary, baselines, cores))
    spins = {name: phase.spins for name, phase in phases.items()}
    waits = [wait for phase in phases.values() for wait in phase.waits]
    requests = args.rounds * (args.latency_requests + 100)
    print("Spins during the latency rounds (up to two a request: awaiting the reply, then the next call; a pause stops "
          "them for 5-60 s): "
          + ", ".join(f"{name} {spun:,} of {requests:,} requests, {paused} pause{'' if paused == 1 else 's'}"
                      for name, (spun, paused) in spins.items() if name in cores))
    if waits:
        longest = max(waits)
        print(f"Each round began once the CPUs were <= {SETTLE_BUSY:.0%} busy for 200 ms: waited "
              f"{sum(w for w, _ in waits):.1f} s in all, at most {longest[0]:.1f} s (after the {longest[1]} round); "
              "--no-settle starts each at once.")
    load1 = os.getloadavg()
    ticks1 = cpu_ticks()
    steal = (ticks1[1] - ticks0[1]) / max(1, ticks1[0] - ticks0[0])
    print(f"\n{args.rounds} interleaved rounds; latency: {args.latency_requests} requests/round, one REQ client; "
          f"throughput: {args.throughput_seconds:.0f} s/round, asyncio client, {args.in_flight} in flight; "
          "broker CPU: its process (thread + libzmq I/O thread) per request at 64 in flight. Each TACore row ran in a "
          "phase of its own beside zmq.proxy and lbbroker started for it; its ratios are to those (the baseline rows "
          "shown are TACore's phase's).")
    print(f"CPU steal during the run: {steal:.1%} of the machine's CPU time (other guests of the hypervisor; "
          "figures are noisy when it is high).")
    print(f"Load average (1, 5, 15 min) at the start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, at the end "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} on {os.cpu_count()} CPUs (compare ratios within a run).")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "ratios": ratios, "steal": steal,
                                         "load": [load0, load1]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
