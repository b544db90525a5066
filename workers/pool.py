"""WorkerPool: keeps ``WORKER_COUNT`` worker processes alive, restarting any that exits, is killed or hangs.

A worker whose handler overruns its deadline by ``WORKER_RECYCLE_GRACE_MS`` ends itself (the runtime's
watcher); the pool starts a new one. Each worker also writes, in a shared double, when it must be gone
(the running handler's deadline plus the grace): a handler that holds the GIL in C code keeps the
watcher from running, so the pool kills a process still alive ``_BACKSTOP_S`` after that time.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

from tacore.process_start import child_context, run_child
from tacore.restarts import RestartBackoff
from tacore.settings import Settings

log = logging.getLogger("tacore.worker")

_CHECK_S = 0.2
_BACKSTOP_S = 1.0


def load_registry(spec: str) -> Any:
    """The MethodRegistry named by ``module:function`` (``WORKER_REGISTRY``)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "default_registry")()


def worker_main(settings: Settings, worker_id: str, watchdog: Any = None) -> None:
    """Entry point of one pool worker process."""
    from tacore import heap
    from tacore.auth.credentials import worker_keys
    from tacore.childprocess import become_supervised_child, name_process
    from tacore.logconfig import configure_logging
    from tacore.signals import stop_event_on_signals
    from tacore.store.idempotency import IdempotencyStore
    from workers import process_settings
    from workers.alive import AliveMark
    from workers.runtime import Worker

    process_settings.configure(settings)
    name_process(f"worker {worker_id}")
    become_supervised_child()
    configure_logging(settings, "worker")
    stop = stop_event_on_signals()
    registry = load_registry(settings.worker_registry)
    store = None
    if any(not spec.idempotent for spec in registry):
        store = IdempotencyStore(settings.idempotency_store_url, ttl_s=settings.idempotency_ttl_s)
    alive = None
    if settings.worker_alive_dir is not None:
        alive = AliveMark(settings.worker_alive_dir / worker_id, settings.heartbeat_interval_ms / 1000.0)
    worker = Worker(settings.worker_endpoint, registry, worker_id=worker_id, kind="worker",
                    credit=settings.worker_credit, heartbeat_interval_ms=settings.heartbeat_interval_ms,
                    liveness=settings.heartbeat_liveness, reconnect_initial_ms=settings.reconnect_initial_ms,
                    reconnect_max_ms=settings.reconnect_max_ms, idempotency=store,
                    handback_ms=settings.worker_handback_ms, recycle_grace_ms=settings.worker_recycle_grace_ms,
                    exit_on_overrun=True, watchdog=watchdog, curve=worker_keys(settings), alive=alive)
    log.info("worker %s started, serving %s via %s%s", worker_id, ", ".join(worker.registry.names()),
             settings.worker_endpoint, f"; idempotency records in {store.describe()}" if store else "")
    heap.settle()  # start-up is over: its heap is never walked by the collector again
    worker.run(stop)
    log.info("worker %s stopped after %d requests", worker_id, worker.served)


class WorkerPool:
    def __init__(self, settings: Settings, *, count: int | None = None, prefix: str = "w") -> None:
        self.settings = settings
        self.count = settings.worker_count if count is None else count  # 0: workers come from elsewhere
        self.prefix = prefix
        self.restarts = 0
        self.recycled = 0
        self._ctx = child_context()
        self._procs: dict[str, BaseProcess] = {}
        self._watchdogs: dict[str, Any] = {}  # worker_id -> RawValue('d'): monotonic time it must be gone by
        self._started: dict[str, float] = {}
        self._backoff: dict[str, RestartBackoff] = {}

    def start(self) -> None:
        if self.settings.worker_alive_dir is not None:
            from workers.alive import prepare

            prepare(self.settings.worker_alive_dir)
        for index in range(self.count):
            self._spawn(f"{self.prefix}{index + 1}")

    def pids(self) -> dict[str, int | None]:
        return {worker_id: proc.pid for worker_id, proc in self._procs.items()}

    def check(self) -> None:
        """Kill a worker hung past its deadline and grace; restart every worker process that has exited: at once
        after a recycle or a good run, with backoff while one keeps dying at start (``tacore.restarts``)."""
        now = time.monotonic()
        for worker_id, proc in list(self._procs.items()):
            backoff = self._backoff.setdefault(worker_id, RestartBackoff())
            if backoff.next_start_at is None:
                self._reap(worker_id, proc, backoff, now)
            if backoff.due(now):
                backoff.started()
                self._spawn(worker_id)

    def _reap(self, worker_id: str, proc: BaseProcess, backoff: RestartBackoff, now: float) -> None:
        gone_by = self._watchdogs[worker_id].value
        killed = False
        if gone_by and now > gone_by + _BACKSTOP_S and proc.is_alive():
            log.error("worker %s (pid %s) is still running a request %.1f s past its deadline and grace "
                      "and did not end itself (a handler holding the GIL?); killing it", worker_id, proc.pid,
                      now - gone_by)
            proc.kill()
            proc.join(1)
            killed = True
        if proc.is_alive():
            return
        from workers.runtime import EXIT_RECYCLED

        self.restarts += 1
        if proc.exitcode == EXIT_RECYCLED or killed:
            self.recycled += 1
            backoff.exited(proc.exitcode, backoff.healthy_run_s, now)  # on purpose: replaced at once
            log.warning("worker %s (pid %s) recycled (a handler overran its deadline); replacing it",
                        worker_id, proc.pid)
            return
        delay = backoff.exited(proc.exitcode, now - self._started.get(worker_id, now), now)
        log.warning("worker %s (pid %s) exited with %s; restarting %s", worker_id, proc.pid, proc.exitcode,
                    f"in {delay:.1f} s ({backoff.failures_in_row} quick exits in a row)" if delay else "now")

    def restart_facts(self, now: float) -> dict[str, object]:
        """The pool as one supervised component: the worst of its workers' restart states."""
        states = [b.to_wire(now) for b in self._backoff.values()]
        worst = max(states, key=lambda s: int(str(s["failures_in_row"])), default=RestartBackoff().to_wire(now))
        return {**worst, "restarts": self.restarts}

    def run(self, stop: threading.Event) -> None:
        self.start()
        while not stop.wait(_CHECK_S):
            self.check()
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM every worker; one still running after ``timeout`` (a hung handler) is killed."""
        for proc in self._procs.values():
            if proc.is_alive() and proc.pid is not None:
                proc.terminate()
        deadline = time.monotonic() + max(timeout, self.settings.worker_recycle_grace_ms / 1000.0 + _BACKSTOP_S)
        for proc in self._procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("%s did not stop in time; killing it", proc.name)
                proc.kill()
                proc.join(1)

    def _spawn(self, worker_id: str) -> None:
        watchdog = self._ctx.RawValue("d", 0.0)
        proc = self._ctx.Process(target=run_child, args=(worker_main, self.settings, worker_id, watchdog),
                                 name=f"tacore-{worker_id}", daemon=False)
        proc.start()
        self._procs[worker_id] = proc
        self._watchdogs[worker_id] = watchdog
        self._started[worker_id] = time.monotonic()
