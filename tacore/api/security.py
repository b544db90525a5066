"""The API key: header ``X-API-Key`` on every endpoint but ``/health`` and ``/ping``.

A browser cannot set a header on a page load, so the dashboard also accepts the key from an
HttpOnly, SameSite=Strict cookie that ``GET /?api_key=...`` sets once. Writes (the kline commands)
take the header only: a cookie rides along with any request the browser makes, a header does not.
Without a configured key the sidecar binds to loopback only (``Settings.api_bind_host``).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from tacore.api.deps import get_settings
from tacore.api.schemas import Problem

HEADER = "X-API-Key"
COOKIE = "tacore_api_key"

api_key_header = APIKeyHeader(name=HEADER, auto_error=False,
                              description="The sidecar's API_KEY; required when one is configured.")


#: What every guarded route may answer besides its own: documented in the schema (``responses=``).
KEY_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "the X-API-Key header (or, for reads, the dashboard's cookie) is "
                                           "missing or wrong"},
}


def key_matches(expected: str, supplied: str | None) -> bool:
    """Constant-time comparison, so the key cannot be guessed a character at a time."""
    return supplied is not None and hmac.compare_digest(supplied.encode(), expected.encode())


def _reject(supplied: str | None) -> HTTPException:
    problem = "missing API key" if not supplied else "wrong API key"
    return HTTPException(401, detail=f"{problem}: send the {HEADER} header", headers={"WWW-Authenticate": HEADER})


async def require_key(request: Request, key: str | None = Security(api_key_header)) -> None:
    """Reads: the header, or the dashboard's cookie."""
    expected = get_settings(request).api_key
    if expected is None:
        return
    supplied = key if key is not None else request.cookies.get(COOKIE)
    if not key_matches(expected, supplied):
        raise _reject(supplied)


async def require_key_for_write(request: Request, key: str | None = Security(api_key_header)) -> None:
    """Writes: the header only, even from loopback."""
    expected = get_settings(request).api_key
    if expected is None:
        return
    if not key_matches(expected, key):
        raise _reject(key)
