"""``GET /methods``: per method, count, success rate, latency percentiles and errors by code."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tacore.api.broker_link import Sampler
from tacore.api.deps import SamplerDep
from tacore.api.routes.metrics import InternalParam
from tacore.api.schemas import MethodsReply, MethodStatsRow, Problem
from tacore.api.stats import method_summary

router = APIRouter(tags=["methods"])


def method_rows(sampler: Sampler, internal: bool = False) -> list[dict[str, Any]]:
    """Every method the broker has answered or knows a worker for, busiest first (user traffic, or with
    TACore's own calls added when ``internal``)."""
    metrics = sampler.require_metrics(internal)
    status = sampler.status or {}
    bounds = list(metrics.get("latency_buckets_ms", []))
    _, rates = sampler.traffic_series(internal).rates()
    declared: dict[str, Any] = status.get("methods", {})
    rows = []
    for name in sorted(set(metrics.get("methods", {})) | set(declared)):
        row = method_summary(name, metrics.get("methods", {}).get(name, {}), bounds)
        row["rps_1m"] = rates.get(name)
        info = declared.get(name)
        row["workers"] = None if info is None else info.get("workers")
        row["idempotent"] = None if info is None else info.get("idempotent")
        rows.append(row)
    rows.sort(key=lambda r: (-r["count"], r["method"]))
    return rows


@router.get("/methods", response_model=MethodsReply, responses={503: {"model": Problem}},
            summary="Per-method counts, success rate, p50/p95/p99 and errors by code")
async def methods(sampler: SamplerDep, internal: InternalParam = False) -> MethodsReply:
    rows = method_rows(sampler, internal)
    return MethodsReply(snapshot_age_s=sampler.snapshot_age_s(), methods=[MethodStatsRow(**r) for r in rows])
