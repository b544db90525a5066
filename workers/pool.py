"""WorkerPool: keeps ``WORKER_COUNT`` worker processes alive, restarting any that exits or is killed."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from multiprocessing.process import BaseProcess

from tacore.settings import Settings

log = logging.getLogger("tacore.worker")

_CHECK_S = 0.2


def worker_main(settings: Settings, worker_id: str) -> None:
    """Entry point of one pool worker process."""
    from tacore.childprocess import become_supervised_child, name_process
    from tacore.logconfig import configure_logging
    from tacore.signals import stop_event_on_signals
    from workers import dependencies
    from workers.methods import default_registry
    from workers.runtime import Worker

    name_process(f"worker {worker_id}")
    become_supervised_child()
    configure_logging(settings, "worker")
    stop = stop_event_on_signals()
    dependencies.configure(settings)
    worker = Worker(settings.worker_endpoint, default_registry(), worker_id=worker_id, kind="worker",
                    credit=settings.worker_credit, heartbeat_interval_ms=settings.heartbeat_interval_ms,
                    liveness=settings.heartbeat_liveness, reconnect_initial_ms=settings.reconnect_initial_ms,
                    reconnect_max_ms=settings.reconnect_max_ms)
    log.info("worker %s started, serving %s via %s", worker_id, ", ".join(worker.registry.names()),
             settings.worker_endpoint)
    worker.run(stop)
    log.info("worker %s stopped after %d requests", worker_id, worker.served)


class WorkerPool:
    def __init__(self, settings: Settings, *, count: int | None = None, prefix: str = "w") -> None:
        self.settings = settings
        self.count = count or settings.worker_count
        self.prefix = prefix
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[str, BaseProcess] = {}

    def start(self) -> None:
        for index in range(self.count):
            self._spawn(f"{self.prefix}{index + 1}")

    def pids(self) -> dict[str, int | None]:
        return {worker_id: proc.pid for worker_id, proc in self._procs.items()}

    def check(self) -> None:
        """Restart every worker process that has exited."""
        for worker_id, proc in list(self._procs.items()):
            if not proc.is_alive():
                log.warning("worker %s (pid %s) exited with %s; restarting", worker_id, proc.pid, proc.exitcode)
                self.restarts += 1
                self._spawn(worker_id)

    def run(self, stop: threading.Event) -> None:
        self.start()
        while not stop.wait(_CHECK_S):
            self.check()
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        for proc in self._procs.values():
            if proc.is_alive() and proc.pid is not None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self._procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1)

    def _spawn(self, worker_id: str) -> None:
        proc = self._ctx.Process(target=worker_main, args=(self.settings, worker_id), name=f"tacore-{worker_id}",
                                 daemon=False)
        proc.start()
        self._procs[worker_id] = proc
