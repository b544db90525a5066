"""A worker process with test-only methods (``test.sleep``, ``test.spin``, ``test.count``...).

Run as ``python -m tests.support.method_worker ENDPOINT WORKER_ID [CREDIT]``; it is a real worker
(the production runtime), only its methods are for tests. Its non-idempotent methods are claimed in
``IDEMPOTENCY_URL`` (the test fixture gives every worker of a test the same SQLite file). A pool can
serve the same methods: ``WORKER_REGISTRY=tests.support.method_worker:build_registry``.
"""

from __future__ import annotations

import os
import sys
import time
from itertools import count
from pathlib import Path

from pydantic import BaseModel

from tacore.errors import Unavailable
from tacore.signals import stop_event_on_signals
from tacore.store.idempotency import IdempotencyStore
from workers.registry import CallContext, MethodRegistry
from workers.runtime import Worker

registry = MethodRegistry()
_order = count(1)


class FileBarrier:
    """A commit barrier whose durable store is a file: ``test.stage`` stages a line, ``commit`` appends
    the batch to ``committed.txt`` and its size to ``commits.txt`` -- or refuses while ``refuse`` exists."""

    def __init__(self, directory: str) -> None:
        self.dir = Path(directory)
        self.staged: list[str] = []

    def commit(self) -> None:
        if not self.staged:
            return
        lines, self.staged = self.staged, []
        if (self.dir / "refuse").exists():
            raise Unavailable(f"the store refused a batch of {len(lines)}")
        with (self.dir / "committed.txt").open("a") as out:
            out.write("".join(f"{line}\n" for line in lines))
        with (self.dir / "commits.txt").open("a") as out:
            out.write(f"{len(lines)}\n")


BARRIER = FileBarrier(os.environ["TEST_BARRIER_DIR"]) if os.environ.get("TEST_BARRIER_DIR") else None


class SleepParams(BaseModel):
    ms: int = 0
    tag: str = ""


class SideEffectParams(BaseModel):
    ms: int = 0
    tag: str = ""
    path: str  # a file the handler appends one line to per run: the test counts the runs


@registry.method("test.sleep")
def sleep(params: SleepParams) -> dict[str, object]:
    """A sleeping handler that ignores its context (a blocking call that hangs)."""
    time.sleep(params.ms / 1000.0)
    return {"tag": params.tag, "pid": os.getpid(), "order": next(_order)}


@registry.method("test.sleep_idempotent", idempotent=True)
def sleep_idempotent(params: SleepParams) -> dict[str, object]:
    time.sleep(params.ms / 1000.0)
    return {"tag": params.tag, "pid": os.getpid(), "order": next(_order)}


@registry.method("test.spin", idempotent=True)
def spin(params: SleepParams) -> dict[str, object]:
    """A busy loop that ignores its context (a handler stuck computing)."""
    end = time.monotonic() + params.ms / 1000.0
    while time.monotonic() < end:
        pass
    return {"tag": params.tag, "pid": os.getpid(), "order": next(_order)}


@registry.method("test.count")
def count_runs(params: SideEffectParams) -> dict[str, object]:
    """Non-idempotent: one line per run in ``path`` (written first), then a sleep."""
    with Path(params.path).open("a") as out:
        out.write(f"{params.tag} {os.getpid()}\n")
    time.sleep(params.ms / 1000.0)
    return {"tag": params.tag, "pid": os.getpid(), "runs": len(Path(params.path).read_text().splitlines())}


@registry.method("test.cooperative", idempotent=True)
def cooperative(params: SideEffectParams, ctx: CallContext) -> dict[str, object]:
    """Waits up to ``ms`` for a cancel, then writes what it saw to ``path`` (kind, reason, expired)."""
    cancelled = ctx.cancelled.wait(params.ms / 1000.0)
    Path(params.path).write_text(f"{ctx.cancelled.kind} {ctx.expired} {ctx.cancelled.reason}\n")
    return {"tag": params.tag, "cancelled": cancelled}


@registry.method("test.stage")
def stage(params: SleepParams) -> dict[str, object]:
    """Non-idempotent: stages ``tag`` with the worker's commit barrier (TEST_BARRIER_DIR), then sleeps."""
    if BARRIER is None:
        raise Unavailable("this worker has no commit barrier (TEST_BARRIER_DIR)")
    BARRIER.staged.append(params.tag)
    time.sleep(params.ms / 1000.0)
    return {"tag": params.tag, "pid": os.getpid()}


@registry.method("test.resumable", resumable=True)
def resumable(params: SideEffectParams) -> dict[str, object]:
    """Not idempotent but resumable: one line per run in ``path``, then a sleep."""
    with Path(params.path).open("a") as out:
        out.write(f"{params.tag} {os.getpid()}\n")
    time.sleep(params.ms / 1000.0)
    return {"tag": params.tag, "runs": len(Path(params.path).read_text().splitlines())}


@registry.method("test.fail")
def fail(params: SleepParams) -> dict[str, object]:
    raise RuntimeError(f"handler failure {params.tag}")


def build_registry() -> MethodRegistry:
    """The test methods and the default ones (health.check), for a pool (``WORKER_REGISTRY``)."""
    from workers.methods import default_registry

    combined = default_registry()
    combined.include(registry)
    return combined


def main() -> None:
    endpoint, worker_id = sys.argv[1], sys.argv[2]
    credit = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    stop = stop_event_on_signals()
    store = IdempotencyStore(os.environ["IDEMPOTENCY_URL"])
    heartbeat_ms = int(os.environ.get("HEARTBEAT_INTERVAL_MS", "200"))  # the broker's, which it must match
    Worker(endpoint, registry, worker_id=worker_id, kind="test", credit=credit, heartbeat_interval_ms=heartbeat_ms,
           reconnect_initial_ms=50, reconnect_max_ms=500, idempotency=store,
           handback_ms=int(os.environ.get("WORKER_HANDBACK_MS", "100")),
           recycle_grace_ms=int(os.environ.get("WORKER_RECYCLE_GRACE_MS", "5000")), commit_barrier=BARRIER).run(stop)


if __name__ == "__main__":
    main()
