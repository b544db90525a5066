"""health.check: is this worker alive, and (detailed) how do the broker and the dependencies look.

The dependency states are the broker's (``tacore.health``), delivered with its heartbeat: this worker
probes nothing itself, so it cannot disagree with ``/health`` or ``kline.status``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from tacore import __version__
from tacore.health import worst
from workers.registry import CallContext, MethodRegistry

registry = MethodRegistry()
_STARTED = time.time()


class HealthCheckParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detailed: bool = False


@registry.method("health.check", idempotent=True)
def health_check(params: HealthCheckParams, ctx: CallContext) -> dict[str, Any]:
    """Liveness of the worker that answers; with ``detailed`` the broker's view and each dependency."""
    reply: dict[str, Any] = {
        "status": "healthy",
        "version": __version__,
        "uptime_s": round(time.time() - _STARTED, 3),
        "worker_id": ctx.worker_id,
        "pid": os.getpid(),
    }
    if params.detailed:
        reply["broker"] = {
            "queue_depth": ctx.broker.get("queue_depth"),
            "live_workers": ctx.broker.get("live_workers"),
            "inflight": ctx.broker.get("inflight"),
            "snapshot_age_s": _age(ctx.broker.get("received_at")),
        }
        # The broker's states (tacore.health), as its last heartbeat brought them: /health and kline.status
        # show the same set.
        shared = ctx.broker.get("health") or {}
        dependencies = shared.get("dependencies") or {}
        reply["dependencies"] = dependencies
        reply["assessed_at"] = shared.get("checked_at")
        if not dependencies or worst(dependencies.values()) != "up":
            reply["status"] = "degraded"
    return reply


def _age(received_at: float | None) -> float | None:
    return None if received_at is None else round(time.time() - received_at, 3)
