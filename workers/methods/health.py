"""health.check: is this worker alive, and (detailed) how do the broker and the dependencies look."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from tacore import __version__
from workers.dependencies import dependency_states, store_clock
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
        deps = dependency_states()
        reply["broker"] = {
            "queue_depth": ctx.broker.get("queue_depth"),
            "live_workers": ctx.broker.get("live_workers"),
            "inflight": ctx.broker.get("inflight"),
            "snapshot_age_s": _age(ctx.broker.get("received_at")),
        }
        agents = ctx.broker.get("workers_by_kind", {}).get("data-agent", 0)
        data_agent: dict[str, Any] = {"status": "up" if agents else "absent", "live": agents}
        clock = store_clock()  # the agent's last check of its candles against the exchange's clock, if any
        if clock is not None:
            data_agent["store_clock"] = clock
        deps = {**deps, "data_agent": data_agent}
        reply["dependencies"] = deps
        if any(state["status"] == "down" for state in deps.values()) or (clock or {}).get("state") == "ahead":
            reply["status"] = "degraded"
    return reply


def _age(received_at: float | None) -> float | None:
    return None if received_at is None else round(time.time() - received_at, 3)
