"""``GET /health``: every component's state; 200 only when all that should be up are up.

Open without the API key (load balancers and orchestrators probe it). The broker's state comes from
the sampler's last poll (at most a second old); the database and the cache are probed here, each
with a short timeout, so a hung dependency makes the check fail fast rather than hang.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from tacore.api import log_reader
from tacore.api.broker_link import Sampler
from tacore.api.deps import EngineDep, SamplerDep, SettingsDep
from tacore.api.schemas import HealthReply

router = APIRouter(tags=["health"])

_PROBE_TIMEOUT_S = 1.5


@router.get("/health", response_model=HealthReply, responses={503: {"model": HealthReply}},
            summary="Is the whole service up?")
async def health(sampler: SamplerDep, engine: EngineDep,
                 settings: SettingsDep) -> JSONResponse:
    database, cache = await asyncio.gather(_database(engine), _cache(settings.redis_url))
    components: dict[str, dict[str, Any]] = {
        "broker": _broker(sampler), "workers": _workers(sampler), "database": database, "cache": cache,
        "data_agent": _data_agent(sampler),
    }
    healthy = all(c["status"] != "down" for c in components.values())
    body = {"status": "healthy" if healthy else "unhealthy", "components": components,
            "checked_at": round(time.time(), 3)}
    return JSONResponse(body, status_code=200 if healthy else 503)


def _broker(sampler: Sampler) -> dict[str, Any]:
    if not sampler.broker_up() or sampler.status is None:
        return {"status": "down", "detail": sampler.broker_error or "snapshot is stale",
                "snapshot_age_s": sampler.snapshot_age_s()}
    status = sampler.status
    return {"status": "up", "uptime_s": status.get("uptime_s"), "queue_depth": status.get("queue_depth"),
            "inflight": status.get("inflight"), "snapshot_age_s": sampler.snapshot_age_s()}


def _workers(sampler: Sampler) -> dict[str, Any]:
    if not sampler.broker_up() or sampler.status is None:
        return {"status": "down", "detail": "unknown: the broker is down", "live": 0}
    live = [w for w in sampler.status.get("workers", []) if w.get("state") != "dead" and w.get("kind") != "data-agent"]
    if not live:
        return {"status": "down", "detail": "no live worker is registered with the broker", "live": 0}
    return {"status": "up", "live": len(live)}


def _data_agent(sampler: Sampler) -> dict[str, Any]:
    agent = sampler.data_agent()
    if agent["configured"] is None:
        return {"status": "down", "detail": "unknown: the broker is down"}
    if not agent["configured"]:
        return {"status": "not_configured"}
    if not agent["up"]:
        return {"status": "down", "detail": "no data agent serves the kline methods"}
    return {"status": "up", "workers": agent["workers"], "last_status_at": sampler.kline_at}


async def _database(engine: Engine) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(log_reader.ping, engine), _PROBE_TIMEOUT_S)
    except Exception as exc:
        return {"status": "down", "kind": engine.dialect.name, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "up", "kind": engine.dialect.name,
            "latency_ms": round((time.perf_counter() - started) * 1000.0, 3)}


async def _cache(redis_url: str | None) -> dict[str, Any]:
    if not redis_url:
        return {"status": "not_configured", "detail": "REDIS_URL unset: the workers cache in memory"}
    import redis.asyncio as aioredis

    started = time.perf_counter()
    client = aioredis.Redis.from_url(redis_url, socket_timeout=_PROBE_TIMEOUT_S,
                                     socket_connect_timeout=_PROBE_TIMEOUT_S)
    try:
        await asyncio.wait_for(client.ping(), _PROBE_TIMEOUT_S)
    except Exception as exc:
        return {"status": "down", "kind": "redis", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        await client.aclose()
    return {"status": "up", "kind": "redis", "latency_ms": round((time.perf_counter() - started) * 1000.0, 3)}
