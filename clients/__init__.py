"""TACore's client library: a sync Lazy Pirate client and an asyncio client, with typed errors.

Depends on pyzmq only, so it can be used from any Python program that talks to a TACore broker.
"""

from __future__ import annotations

from clients.async_client import AsyncClient
from clients.curve import CurveKeys, KeyFileError
from clients.errors import ClientError, Forbidden, KeyRefused, RemoteError, RequestTimeout
from clients.lazy_pirate import LazyPirateClient

__all__ = ["AsyncClient", "ClientError", "CurveKeys", "Forbidden", "KeyFileError", "KeyRefused", "LazyPirateClient",
           "RemoteError", "RequestTimeout"]
