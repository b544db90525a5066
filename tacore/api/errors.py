"""The sidecar's error replies: a component that is down is a 503 naming it, never a 500.

Every route raises ``ComponentUnavailable`` (or lets a database error through); the handlers here
turn them into one JSON shape: ``{"detail": message, "component": name}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ComponentUnavailable, _component_unavailable)
    app.add_exception_handler(SQLAlchemyError, _database_error)
