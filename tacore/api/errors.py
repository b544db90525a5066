"""The sidecar's error replies: a component that is down is a 503 naming it, never a 500.

Every route raises ``ComponentUnavailable`` (or lets a database error through); the handlers here
turn them into one JSON shape: ``{"detail": message, "component": name}``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("tacore.api")


class ComponentUnavailable(Exception):
    """A part of the service the request needs (broker, database, data agent...) cannot answer."""

    def __init__(self, component: str, message: str, *, status_code: int = 503) -> None:
        super().__init__(message)
        self.component = component
        self.message = message
        self.status_code = status_code


async def _component_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ComponentUnavailable)
    return JSONResponse({"detail": exc.message, "component": exc.component}, status_code=exc.status_code,
                        headers={"Retry-After": "2"} if exc.status_code == 503 else None)


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("request log unreadable: %s", exc)
    return JSONResponse({"detail": f"the request log database is unavailable: {type(exc).__name__}",
                         "component": "database"}, status_code=503, headers={"Retry-After": "2"})


def _documented_methods(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    """Every path of the OpenAPI schema as a pattern, with its methods (built once per app)."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "allow_table", None)
    if table is None:
        table = [(re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"),
                  {m.upper() for m in operations})
                 for path, operations in app.openapi().get("paths", {}).items()]
        app.state.allow_table = table
    return table


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    """As FastAPI answers, but ``Allow`` lists every method the schema documents for the path: a path
    served by two routes (``GET`` and ``POST /flows/{flow_id}/cycles``) would otherwise name only one."""
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    allowed = {m for pattern, methods in _documented_methods(request.app) if pattern.match(path) for m in methods}
    if not allowed:
        return await http_exception_handler(request, exc)
    return JSONResponse({"detail": exc.detail}, status_code=405, headers={"Allow": ", ".join(sorted(allowed))})


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate a client sent (``"\\ud800"``) can be
    echoed back in a 422's ``input`` without failing to encode (a 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ComponentUnavailable, _component_unavailable)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(405, _method_not_allowed)
    app.add_exception_handler(RequestValidationError, _invalid_request)
