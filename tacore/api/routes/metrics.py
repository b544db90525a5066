"""``GET /metrics`` (Prometheus text) and ``GET /metrics/summary`` (the seed's JSON view).

Both read the sampler's last snapshot: a scrape never reaches the broker.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from tacore.api import prom
from tacore.api.deps import SamplerDep
from tacore.api.schemas import Problem, Summary
from tacore.api.stats import check_targets, totals

router = APIRouter(tags=["metrics"])

#: ``?internal=true``: count TACore's own calls (the sidecar's polling, the scheduler's) in the figures too.
InternalParam = Annotated[bool, Query(description="also count TACore's own calls (sidecar polling, scheduler); "
                                                  "by default the figures are user traffic only")]


@router.get("/metrics", response_class=Response, summary="Prometheus exposition",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "text format 0.0.4"}})
async def metrics(request: Request, sampler: SamplerDep, internal: InternalParam = False) -> Response:
    if internal:
        body = sampler.memo(MEMO_KEY_ALL, lambda: render(request.app.state.prom_registry_all))
    else:
        body = sampler.memo(MEMO_KEY, lambda: render(request.app.state.prom_registry))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


MEMO_KEY = "metrics"
MEMO_KEY_ALL = "metrics+internal"


def render(registry: CollectorRegistry) -> bytes:
    """The exposition, as the sampler keeps it warm (``Sampler.keep_warm``) and the route serves it."""
    return prom.render(registry)


@router.get("/metrics/summary", response_model=Summary, responses={503: {"model": Problem}},
            summary="Totals, success rate, response times, throughput, cache hit rate, CPU and memory")
async def summary(sampler: SamplerDep, internal: InternalParam = False) -> Summary:
    status = sampler.require_status()
    metrics = sampler.require_metrics(internal)
    rps_1m, _ = sampler.traffic_series(internal).rates()
    hits, misses, hit_rate = prom.cache_counts(sampler.kline_status)
    system = sampler.resources.system
    figures = totals(metrics)
    return Summary(
        **figures,
        requests_per_second_1m=rps_1m,
        cache_hit_rate=hit_rate,
        cache={"hits": hits, "misses": misses},
        cpu_percent=system.get("cpu_percent"),
        memory_percent=system.get("memory_percent"),
        system=system,
        service=sampler.resources.service_totals(),
        queue_depth=int(metrics.get("queue_depth", 0)),
        inflight=int(metrics.get("inflight", 0)),
        live_workers=int(status.get("live_workers", 0)),
        uptime_s=float(status.get("uptime_s", 0.0)),
        snapshot_age_s=sampler.snapshot_age_s(),
        targets=check_targets({**figures, "cache_hit_rate": hit_rate, "cpu_percent": system.get("cpu_percent"),
                               "memory_percent": system.get("memory_percent")}),
    )
