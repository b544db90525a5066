"""``GET /``: the operator's page, its data feed and its static files (all served from the package).

The page polls ``/dashboard/data`` every second; that feed is built from the sampler's snapshot, so
any number of open pages costs the broker nothing more. Chart points are sent incrementally
(``since``): a page that has been open for an hour receives one new point a second.
"""

from __future__ import annotations

import time
from html import escape
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from tacore.api.broker_link import Sampler
from tacore.api.deps import SamplerDep, SettingsDep
from tacore.api.errors import ComponentUnavailable
from tacore.api.prom import cache_counts
from tacore.api.routes.methods import method_rows
from tacore.api.routes.metrics import InternalParam
from tacore.api.security import COOKIE, HEADER, KEY_RESPONSES, key_matches, require_key
from tacore.api.stats import check_targets, totals

router = APIRouter(tags=["dashboard"])

STATIC_DIR = Path(str(resources.files("tacore").joinpath("api/static")))
_SERIES_FIELDS = ("rps", "errors_ps", "p50_ms", "p95_ms", "p99_ms", "queue_depth")
_LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>TACore - API key</title>
<link rel="stylesheet" href="/static/login.css"></head><body><form method="post" action="/login">
<h1>TACore monitor</h1><p>{message}</p><input type="password" name="api_key" placeholder="API key" autofocus>
<button type="submit">Open</button></form></body></html>"""


@router.get("/", response_class=HTMLResponse, summary="The live dashboard",
            responses={401: {"description": "API key missing or wrong: a form asks for it"}})
async def dashboard(request: Request, settings: SettingsDep,
                    api_key: Annotated[str | None, Query(include_in_schema=False)] = None) -> Response:
    expected = settings.api_key
    if expected is not None:
        if api_key is not None:  # a scripted link; the form posts to /login (keeps the key out of history)
            return _login(expected, api_key)
        supplied = request.headers.get(HEADER) or request.cookies.get(COOKIE)
        if not key_matches(expected, supplied):
            return HTMLResponse(_LOGIN_PAGE.format(message=escape("This sidecar needs its API key.")),
                                status_code=401)
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                        headers={"Cache-Control": "no-store"})


@router.get("/dashboard/flows", response_class=HTMLResponse, include_in_schema=False)
async def flows_page(request: Request, settings: SettingsDep) -> Response:
    """The flows page (``static/flows.html``): it reads the flow routes with the dashboard's cookie."""
    expected = settings.api_key
    if expected is not None and not key_matches(expected, request.headers.get(HEADER) or request.cookies.get(COOKIE)):
        return HTMLResponse(_LOGIN_PAGE.format(message=escape("This sidecar needs its API key.")), status_code=401)
    return FileResponse(STATIC_DIR / "flows.html", media_type="text/html", headers={"Cache-Control": "no-store"})


@router.post("/login", include_in_schema=False)
async def login(request: Request, settings: SettingsDep) -> Response:
    """The dashboard's key form (``application/x-www-form-urlencoded``, field ``api_key``)."""
    if settings.api_key is None:
        return RedirectResponse("/", status_code=303)
    form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
    return _login(settings.api_key, (form.get("api_key") or [""])[0])


def _login(expected: str, supplied: str) -> Response:
    """Right key: remember it in an HttpOnly, SameSite=Strict cookie and go to the page; wrong: the form."""
    if not key_matches(expected, supplied):
        return HTMLResponse(_LOGIN_PAGE.format(message="Wrong API key."), status_code=401)
    redirect = RedirectResponse("/", status_code=303)  # drop the key from the address bar
    redirect.set_cookie(COOKIE, supplied, httponly=True, samesite="strict", path="/")
    return redirect


@router.get("/static/login.css", include_in_schema=False)
async def login_css() -> FileResponse:
    """The only asset open without the key: the login form's style."""
    return FileResponse(STATIC_DIR / "login.css", media_type="text/css")


@router.get("/static/{path:path}", dependencies=[Depends(require_key)], include_in_schema=False)
async def static(path: str) -> FileResponse:
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR.resolve()) or not target.is_file():
        raise HTTPException(404, detail="no such file")
    return FileResponse(target, headers={"Cache-Control": "max-age=3600"})


@router.get("/dashboard/data", dependencies=[Depends(require_key)], summary="Everything the page shows",
            responses=KEY_RESPONSES)
async def dashboard_data(
    sampler: SamplerDep,
    since: Annotated[float | None, Query(ge=0, description="only chart points newer than this epoch time")] = None,
    internal: InternalParam = False,
) -> dict[str, Any]:
    return build_view(sampler, since, internal)


def build_view(sampler: Sampler, since: float | None, internal: bool = False) -> dict[str, Any]:
    """The page's data; its request figures are user traffic unless ``internal`` adds TACore's own calls."""
    up = sampler.broker_up()
    view: dict[str, Any] = {
        "now": round(time.time(), 3),
        "broker": {"up": up, "error": None if up else sampler.broker_error,
                   "snapshot_age_s": sampler.snapshot_age_s()},
        "series": _series(sampler, since, internal),
        "internal": internal,
        "window_s": sampler.series.ring.capacity,
        "errors": list(sampler.recent_errors)[:20],
        "database_error": sampler.database_error,
        "resources": {"system": sampler.resources.system, "service": sampler.resources.service_totals()},
        "kline": _kline(sampler),
        "trading": sampler.trading.view(),
        "workers": [], "methods": [], "summary": None,
    }
    if not up:
        return view
    try:
        status = sampler.require_status()
        metrics = sampler.require_metrics(internal)
        view["workers"] = sampler.workers()
        view["methods"] = method_rows(sampler, internal)
    except ComponentUnavailable:  # went stale between the check and now
        view["broker"]["up"] = False
        return view
    rps_1m, _ = sampler.traffic_series(internal).rates()
    last = sampler.traffic_series(internal).ring.last()
    view["broker"].update(uptime_s=status.get("uptime_s"), queue_depth=status.get("queue_depth"),
                          inflight=status.get("inflight"), live_workers=status.get("live_workers"),
                          counters=status.get("counters", {}), pid=status.get("pid"))
    system = sampler.resources.system
    _, _, hit_rate = cache_counts(sampler.kline_status)
    figures = {**totals(metrics), "cache_hit_rate": hit_rate, "cpu_percent": system.get("cpu_percent"),
               "memory_percent": system.get("memory_percent")}
    view["summary"] = {**figures, "rps_1m": rps_1m, "rps_now": None if last is None else last.rps,
                       "targets": check_targets(figures)}
    return view


def _series(sampler: Sampler, since: float | None, internal: bool) -> dict[str, list[Any]]:
    samples = sampler.traffic_series(internal).ring.since(since)
    out: dict[str, list[Any]] = {"ts": [s.ts for s in samples]}
    for name in _SERIES_FIELDS:
        out[name] = [getattr(s, name) for s in samples]
    return out


def _kline(sampler: Sampler) -> dict[str, Any]:
    agent = sampler.data_agent()
    status = sampler.kline_status or {}
    raw = (sampler.kline_connections or {}).get("connections", [])
    connections = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    return {
        "configured": agent["configured"], "up": agent["up"], "updated_at": sampler.kline_at,
        "error": sampler.kline_error, "connections": connections,
        "symbols": with_prices(symbol_rows(status.get("symbols", []), connections), sampler.market_data),
        "market_error": sampler.market_error,
        "status": {k: v for k, v in status.items() if not isinstance(v, (dict, list))},
    }


_PRICE_FIELDS = ("market", "price", "change_24h", "change_24h_pct", "high_24h", "low_24h", "quote_volume_24h",
                 "event_time")


def with_prices(rows: list[dict[str, Any]], market_data: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each symbol row with its ``get.market_data`` figures (price, 24 h change...; null when unknown)."""
    for row in rows:
        entry = market_data.get(row["symbol"]) or {}
        ok = entry.get("status") == "ok"
        row["market_status"] = entry.get("status")
        row.update({key: entry.get(key) if ok or key == "market" else None for key in _PRICE_FIELDS})
    return rows


_INTERVAL_ORDER = {name: index for index, name in enumerate(("1m", "5m", "15m", "30m", "1h", "4h", "1d"))}


def symbol_rows(symbols: list[Any], connections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per symbol: its intervals and the last message of the connections carrying them.

    Streams are named like the exchange's (``btcusdt@kline_1m``); a connection multiplexes many, so a
    symbol's "last update" is the newest message among the connections that carry any of its streams.
    """
    rows: dict[str, dict[str, Any]] = {str(s): {"symbol": str(s), "intervals": [], "last_update": None}
                                       for s in symbols}
    for conn in connections:
        last = conn.get("last_message")
        for stream in conn.get("streams", []):
            name, sep, interval = str(stream).partition("@kline_")
            if not sep:
                continue
            row = rows.setdefault(name.upper(), {"symbol": name.upper(), "intervals": [], "last_update": None})
            row["intervals"].append(interval)
            if isinstance(last, (int, float)) and (row["last_update"] is None or last > row["last_update"]):
                row["last_update"] = last
    for row in rows.values():
        row["intervals"].sort(key=lambda i: (_INTERVAL_ORDER.get(i, len(_INTERVAL_ORDER)), i))
    return sorted(rows.values(), key=lambda r: r["symbol"])
