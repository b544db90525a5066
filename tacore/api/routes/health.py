"""``GET /health``: the broker's dependency states, and 503 only when requests cannot be served.

Open without the API key (load balancers and orchestrators probe it). The states are not probed here:
the broker assembles them once a heartbeat from what every process reports (``tacore.health``), and
``health.check`` and ``kline.status`` show the same set. The sidecar adds only what it alone can see:
whether the broker answers its polls (the snapshot is at most a second old).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tacore.api.broker_link import Sampler
from tacore.api.deps import SamplerDep
from tacore.api.schemas import HealthReply
from tacore.health import DEPENDENCIES, serving_possible, worst

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthReply, summary="Is the service up, and how is each dependency?",
            responses={200: {"description": "requests can be served (`healthy`, or `degraded`: a dependency is "
                                            "down or degraded, see its `reason`)"},
                       503: {"model": HealthReply,
                             "description": "requests cannot be served: the broker does not answer or no "
                                            "worker is live"}})
async def health(sampler: SamplerDep) -> JSONResponse:
    broker = _broker(sampler)
    components: dict[str, dict[str, Any]] = {"broker": broker}
    shared: dict[str, Any] = (sampler.status or {}).get("health") or {} if broker["status"] == "up" else {}
    dependencies: dict[str, Any] = shared.get("dependencies") or {}
    if broker["status"] == "up" and dependencies:
        components.update(dependencies)
        serving = serving_possible(dependencies)
    else:
        reason = ("the broker, which assembles the states, is not answering" if broker["status"] != "up"
                  else "the broker has not assessed its dependencies yet")
        components.update({name: {"status": "unknown", "reason": reason} for name in DEPENDENCIES})
        serving = False
    overall = "unhealthy" if not serving else "healthy" if worst(components.values()) == "up" else "degraded"
    body = {"status": overall, "components": components, "checked_at": round(time.time(), 3),
            "assessed_at": shared.get("checked_at")}
    return JSONResponse(body, status_code=200 if serving else 503,
                        headers=None if serving else {"Retry-After": "2"})


def _broker(sampler: Sampler) -> dict[str, Any]:
    if not sampler.broker_up() or sampler.status is None:
        return {"status": "down", "reason": sampler.broker_error or "snapshot is stale",
                "snapshot_age_s": sampler.snapshot_age_s()}
    status = sampler.status
    return {"status": "up", "reason": "answers the sidecar's polls", "uptime_s": status.get("uptime_s"),
            "queue_depth": status.get("queue_depth"), "inflight": status.get("inflight"),
            "snapshot_age_s": sampler.snapshot_age_s()}
