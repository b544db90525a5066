"""The sidecar's app factory: routes, the API key, and the broker sampler's lifetime.

``create_app(settings)`` builds everything from settings alone, so ``tacore api``, ``tacore serve``
and the tests start the very same app. The sampler starts with the app and stops with it.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import create_engine

from tacore import __version__
from tacore.api.broker_link import BrokerLink, Sampler
from tacore.api.errors import install_error_handlers
from tacore.api.prom import build_registry
from tacore.api.routes import (
    analytics,
    dashboard,
    data_agent,
    flows,
    health,
    logs,
    market,
    methods,
    metrics,
    orders,
    workers,
)
from tacore.api.security import KEY_RESPONSES, require_key
from tacore.auth.credentials import client_keys
from tacore.settings import Settings
from tacore.store.migrate import upgrade_schema
from tacore.store.request_log import make_engine

log = logging.getLogger("tacore.api")

DESCRIPTION = """Monitoring sidecar of TACore: health, Prometheus metrics, the request log, workers,
per-method statistics, the data agent's commands, market data and analytics (scans, portfolio risk, technical and
AI analysis, each forwarded to the data agent), the flow engine (TradingFlow's `/flows`, `/nodes`, `/stats`),
orders and the portfolio (`/orders`, `/positions`, `/balances`), and a live dashboard at `/` (flows at
`/dashboard/flows`).

Every endpoint but `/health` and `/ping` needs the `X-API-Key` header when `API_KEY` is set."""


def create_app(settings: Settings, *, sample_interval_s: float = 1.0, migrate: bool = True) -> FastAPI:
    """``migrate``: bring the request log's schema up to date at start (``tacore api`` alone); under
    ``tacore serve`` the recorder does it, the sidecar only reads (503 on /logs until the table exists)."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            engine = make_engine(settings.sqlalchemy_url)
        except Exception as exc:  # e.g. the SQLite directory cannot be made: start, and say so in /health
            log.error("request log database unusable (%s); /logs and /health report it", exc)
            engine = create_engine(settings.sqlalchemy_url)
        if migrate:
            try:
                upgrade_schema(engine)  # the recorder may not have created it yet; reads then see an empty log
            except Exception as exc:
                log.warning("request log schema not ready (%s); /logs answers 503 until it is", exc)
        keys = client_keys(settings)
        poll_link = BrokerLink(settings.client_endpoint, internal=True, curve=keys)
        await poll_link.start()
        link = BrokerLink(settings.client_endpoint, persistent=False, curve=keys)
        sampler = Sampler(poll_link, engine, interval_s=sample_interval_s)
        app.state.engine, app.state.link, app.state.sampler = engine, link, sampler
        app.state.prom_registry = build_registry(sampler)
        app.state.prom_registry_all = build_registry(sampler, internal=True)
        registry = app.state.prom_registry
        sampler.keep_warm(metrics.MEMO_KEY, lambda: metrics.render(registry))
        sampler.keep_warm(workers.MEMO_KEY, lambda: workers.render(sampler))
        app.openapi()  # build the schema now rather than on the first /docs visit
        # Everything so far lives as long as the process: move it out of the collector's sight, so a
        # full collection scans only what requests allocate (~20 ms of pause otherwise, once in a while,
        # right in some request's latency).
        gc.collect()
        gc.freeze()
        sampler.start()
        try:
            yield
        finally:
            await sampler.stop()
            await poll_link.close()
            await link.close()
            engine.dispose()

    app = FastAPI(title="TACore monitoring sidecar", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    install_error_handlers(app)
    guarded = [Depends(require_key)]
    app.include_router(health.router)
    app.include_router(data_agent.open_router)
    app.include_router(metrics.router, dependencies=guarded, responses=KEY_RESPONSES)
    app.include_router(logs.router, dependencies=guarded, responses=KEY_RESPONSES)
    app.include_router(workers.router, dependencies=guarded, responses=KEY_RESPONSES)
    app.include_router(methods.router, dependencies=guarded, responses=KEY_RESPONSES)
    app.include_router(data_agent.read_router, responses=KEY_RESPONSES)
    app.include_router(data_agent.write_router, responses=KEY_RESPONSES)
    app.include_router(market.router)
    app.include_router(analytics.router)
    app.include_router(flows.read_router)
    app.include_router(flows.write_router)
    app.include_router(orders.read_router)
    app.include_router(orders.write_router)
    app.include_router(dashboard.router)
    _install_docs(app)
    return app


def _install_docs(app: FastAPI) -> None:
    """``/docs`` and ``/openapi.json`` behind the key, with Swagger UI served from the package."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_key)])
    async def openapi() -> JSONResponse:
        schema: dict[str, Any] = app.openapi()
        return JSONResponse(schema)

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_key)])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API",
                                   swagger_js_url="/static/vendor/swagger-ui-bundle.js",
                                   swagger_css_url="/static/vendor/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")
