"""CPU and memory of the service's processes (broker, workers, the sidecar) and of the machine.

Only processes on this host can be measured; a remote worker shows no figures rather than wrong
ones. ``psutil.Process`` objects are kept between samples because ``cpu_percent`` is a rate since
the previous call on the same object.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import psutil

HOSTNAME = socket.gethostname()


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    component: str
    pid: int
    cpu_percent: float
    cpu_seconds: float
    rss_bytes: int

    def to_wire(self) -> dict[str, Any]:
        return {"component": self.component, "pid": self.pid, "cpu_percent": round(self.cpu_percent, 1),
                "cpu_seconds": round(self.cpu_seconds, 3), "rss_bytes": self.rss_bytes}


class ResourceSampler:
    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self.system: dict[str, Any] = {}
        self.processes: dict[int, ProcessUsage] = {}
        psutil.cpu_percent(None)  # prime the system-wide rate

    def sample(self, targets: dict[int, str]) -> None:
        """Measure ``targets`` (pid -> component name) plus this process; forget pids that went away."""
        targets = {**targets, os.getpid(): "api"}
        usage: dict[int, ProcessUsage] = {}
        for pid, component in targets.items():
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)
                with proc.oneshot():
                    times = proc.cpu_times()
                    usage[pid] = ProcessUsage(component, pid, proc.cpu_percent(None), times.user + times.system,
                                              proc.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
        for pid in set(self._procs) - set(targets):
            del self._procs[pid]
        self.processes = usage
        memory = psutil.virtual_memory()
        self.system = {
            "cpu_percent": psutil.cpu_percent(None),
            "cpu_count": psutil.cpu_count() or 1,
            "memory_percent": memory.percent,
            "memory_used_bytes": memory.total - memory.available,
            "memory_total_bytes": memory.total,
            "load_1m": round(os.getloadavg()[0], 2),
            "sampled_at": round(time.time(), 3),
        }

    def service_totals(self) -> dict[str, Any]:
        procs = list(self.processes.values())
        return {"cpu_percent": round(sum(p.cpu_percent for p in procs), 1),
                "rss_bytes": sum(p.rss_bytes for p in procs), "processes": len(procs)}


def local_targets(status: dict[str, Any]) -> dict[int, str]:
    """The broker's and its live local workers' pids, from a ``broker.status`` reply."""
    targets: dict[int, str] = {}
    if status.get("pid") and status.get("host") in (None, HOSTNAME):
        targets[int(status["pid"])] = "broker"
    for worker in status.get("workers", []):
        if worker.get("state") != "dead" and worker.get("pid") and worker.get("host") in (None, HOSTNAME):
            targets[int(worker["pid"])] = str(worker.get("kind") or "worker")
    return targets
