"""A worker for the authentication tests: ``auth.echo`` (any role) and ``auth.trade`` (declares role trade).

Run as ``python -m tests.support.keyed_worker ENDPOINT WORKER_ID [KEY_FILE]``; with a key file it
speaks CURVE to the broker (the key file names the broker's key). It is the production runtime;
only its methods are for tests.
"""

from __future__ import annotations

import logging
import os
import sys

from pydantic import BaseModel

from clients.curve import CurveKeys
from tacore.signals import stop_event_on_signals
from workers.registry import MethodRegistry
from workers.runtime import Worker

registry = MethodRegistry()


class EchoParams(BaseModel):
    tag: str = ""


@registry.method("auth.echo", idempotent=True)
def echo(params: EchoParams) -> dict[str, object]:
    return {"tag": params.tag, "pid": os.getpid()}


@registry.method("auth.trade", idempotent=True, role="trade")
def trade(params: EchoParams) -> dict[str, object]:
    return {"traded": params.tag, "pid": os.getpid()}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    endpoint, worker_id = sys.argv[1], sys.argv[2]
    curve = CurveKeys.load(sys.argv[3]) if len(sys.argv) > 3 else None
    stop = stop_event_on_signals()
    Worker(endpoint, registry, worker_id=worker_id, kind="test", credit=2, heartbeat_interval_ms=200,
           reconnect_initial_ms=50, reconnect_max_ms=500, curve=curve).run(stop)


if __name__ == "__main__":
    main()
