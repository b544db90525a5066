"""Alpaca's real-time stock data stream, ``/v2/{feed}`` (``iex``, ``sip``, or ``test``): the connection's
life from the welcome message through authentication and subscriptions.

Every server message is a JSON array; control messages (``success``, ``error``, ``subscription``) come
alone. A connection has ``alpaca_auth_timeout_s`` to authenticate (by message, or by the
``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers of the handshake). Errors use Alpaca's codes;
auth timeout (404), connection limit (406) and insufficient subscription (409) also close the
connection. Frames are JSON text only: msgpack is not offered, a binary frame is invalid syntax.
Minute bars are written by ``feed.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tacore.exchange_sim.alpaca.hub import AlpacaHub, StreamClient
from tacore.exchange_sim.alpaca.payloads import CLIENT_CHANNELS, control, stream_error, subscription

log = logging.getLogger(__name__)

_PATH_RE = re.compile(r"^/v2/(iex|sip|test)$")
CLOSE_POLICY = 1008
INVALID_SYNTAX = (400, "invalid syntax")
NOT_AUTHENTICATED = (401, "not authenticated")
AUTH_FAILED = (402, "auth failed")
ALREADY_AUTHENTICATED = (403, "already authenticated")
AUTH_TIMEOUT = (404, "auth timeout")
SYMBOL_LIMIT = (405, "symbol limit exceeded")
CONNECTION_LIMIT = (406, "connection limit exceeded")
INSUFFICIENT_SUBSCRIPTION = (409, "insufficient subscription")


class AlpacaStreamServer:
    def __init__(self, hub: AlpacaHub) -> None:
        self.hub = hub
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- handshake -------------------------------------------------------------------------------------
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Only ``/v2/iex``, ``/v2/sip`` and ``/v2/test`` exist."""
        match = _PATH_RE.match(urlsplit(request.path).path.rstrip("/"))
        if match is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    # -- a connection's life ---------------------------------------------------------------------------
    async def handler(self, conn: ServerConnection) -> None:
        request = conn.request
        path = urlsplit(request.path).path.rstrip("/") if request is not None else ""
        match = _PATH_RE.match(path)
        remote = str(conn.remote_address[0]) if conn.remote_address else "?"
        client = self.hub.add_client(conn, match.group(1) if match else "iex", remote)
        timer = asyncio.create_task(self._auth_deadline(client))
        if not self.hub.loaded:  # the first client: load the market now, not when its first bar is due
            self._spawn(self.hub.market())
        try:
            await self.send(client, control("success", "connected"))
            if request is not None and "APCA-API-KEY-ID" in request.headers:
                await self._authenticate(client, request.headers.get("APCA-API-KEY-ID"),
                                         request.headers.get("APCA-API-SECRET-KEY"))
            async for message in conn:
                client.frames_received += 1
                await self._serve(client, message)
        except ConnectionClosed:
            pass
        finally:
            timer.cancel()
            self.hub.remove_client(client)

    async def _auth_deadline(self, client: StreamClient) -> None:
        await asyncio.sleep(self.hub.config.alpaca_auth_timeout_s)
        if not client.authenticated:
            await self._refuse(client, AUTH_TIMEOUT, close=True)

    async def _serve(self, client: StreamClient, message: str | bytes) -> None:
        if client.closing:
            return
        if isinstance(message, bytes):  # msgpack is not offered
            await self._refuse(client, INVALID_SYNTAX)
            return
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            await self._refuse(client, INVALID_SYNTAX)
            return
        action = req.get("action") if isinstance(req, dict) else None
        if action == "auth":
            key, secret = req.get("key"), req.get("secret")
            if not isinstance(key, str) or not isinstance(secret, str):
                await self._refuse(client, INVALID_SYNTAX)
                return
            await self._authenticate(client, key, secret)
        elif action in ("subscribe", "unsubscribe"):
            await self._subscribe(client, req, action == "subscribe")
        else:
            await self._refuse(client, INVALID_SYNTAX)

    async def _authenticate(self, client: StreamClient, key: str | None, secret: str | None) -> None:
        hub = self.hub
        if client.authenticated:
            await self._refuse(client, ALREADY_AUTHENTICATED)
        elif not hub.keys.matches(key, secret):
            hub.counters["auth_failures"] += 1
            await self._refuse(client, AUTH_FAILED)
        elif client.feed == "sip" and not hub.config.alpaca_sip:
            await self._refuse(client, INSUFFICIENT_SUBSCRIPTION, close=True)
        elif hub.authenticated_elsewhere(client) >= hub.config.alpaca_max_connections:
            await self._refuse(client, CONNECTION_LIMIT, close=True)
        else:
            client.authenticated = True
            await self.send(client, control("success", "authenticated"))

    async def _subscribe(self, client: StreamClient, req: dict[str, Any], add: bool) -> None:
        if not client.authenticated:
            await self._refuse(client, NOT_AUTHENTICATED)
            return
        changes: dict[str, list[str]] = {}
        for channel in CLIENT_CHANNELS:
            if channel in req:
                names = req[channel]
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    await self._refuse(client, INVALID_SYNTAX)
                    return
                changes[channel] = names
        updated = {channel: dict.fromkeys(names) for channel, names in client.subs.items()}
        for channel, names in changes.items():
            for name in names:
                if add:
                    updated[channel][name] = None
                else:
                    updated[channel].pop(name, None)
        limited = set(updated["trades"]) | set(updated["quotes"])
        if add and client.feed == "iex" and len(limited) > self.hub.config.alpaca_symbol_limit:
            await self._refuse(client, SYMBOL_LIMIT)  # the subscription stays as it was
            return
        client.subs = updated
        lists = {channel: list(names) for channel, names in updated.items()}
        lists["corrections"] = lists["cancelErrors"] = lists["trades"]
        await self.send(client, subscription(lists))

    # -- sending ---------------------------------------------------------------------------------------
    async def send(self, client: StreamClient, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.conn.send(text)
            client.messages_sent += 1
            self.hub.counters["messages_sent"] += 1

    async def _refuse(self, client: StreamClient, error: tuple[int, str], *, close: bool = False) -> None:
        await self.send(client, stream_error(*error))
        if close and not client.closing:
            client.closing = True
            with contextlib.suppress(ConnectionClosed):
                await client.conn.close(CLOSE_POLICY, error[1])

    def close(self, client: StreamClient, code: int = 1000, reason: str = "closed by simulator") -> None:
        """Close a connection from the control API."""
        client.closing = True
        self._spawn(client.conn.close(code, reason))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def abort(client: StreamClient) -> None:
        """Drop the TCP connection without a close frame."""
        client.closing = True
        transport = client.conn.transport
        if transport is not None:
            transport.abort()
