"""A worker process with test-only methods (``test.sleep``, ``test.sleep_idempotent``, ``test.order``).

Run as ``python -m tests.support.method_worker ENDPOINT WORKER_ID [CREDIT]``; it is a real worker
(the production runtime), only its methods are for tests.
"""

from __future__ import annotations

import os
import sys
import time
from itertools import count

from pydantic import BaseModel

from tacore.signals import stop_event_on_signals
from workers.registry import MethodRegistry
from workers.runtime import Worker

registry = MethodRegistry()
_order = count(1)


class SleepParams(BaseModel):
    ms: int = 0
    tag: str = ""


@registry.method("test.sleep")
def sleep(params: SleepParams) -> dict[str, object]:
    time.sleep(params.ms / 1000.0)
    return {"tag": params.tag, "pid": os.getpid(), "order": next(_order)}


@registry.method("test.sleep_idempotent", idempotent=True)
def sleep_idempotent(params: SleepParams) -> dict[str, object]:
    time.sleep(params.ms / 1000.0)
    return {"tag": params.tag, "pid": os.getpid(), "order": next(_order)}


@registry.method("test.fail")
def fail(params: SleepParams) -> dict[str, object]:
    raise RuntimeError(f"handler failure {params.tag}")


def main() -> None:
    endpoint, worker_id = sys.argv[1], sys.argv[2]
    credit = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    stop = stop_event_on_signals()
    Worker(endpoint, registry, worker_id=worker_id, kind="test", credit=credit, heartbeat_interval_ms=200,
           reconnect_initial_ms=50, reconnect_max_ms=500).run(stop)


if __name__ == "__main__":
    main()
