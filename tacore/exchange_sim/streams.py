"""The WebSocket side of the exchange: paths, live requests, limits, pings and forced disconnects.

Mirrors Binance's market-stream endpoint: ``/ws/<stream>`` (raw payloads), ``/stream?streams=a/b``
(wrapped payloads), live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY,
5 incoming frames a second (pings and pongs count) or a 1008 close, 300 connection attempts per
5 minutes per IP or a refused handshake, 1024 streams per connection, a ping every 20 s and a
disconnect after a minute without pong, and a cut after 24 hours. Data frames are written by
``feed.py``; this module owns everything else about a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from tacore.exchange_sim.hub import Client, Hub
from tacore.exchange_sim.intervals import StreamName, parse_stream
from tacore.exchange_sim.payloads import server_shutdown_event, ws_error, ws_result

log = logging.getLogger(__name__)

_COUNTED = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PING, Opcode.PONG})
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_UNKNOWN_METHOD = (
    "Invalid request: unknown variant `{}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, "
    "`LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
)
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_ABNORMAL = 1006  # recorded for aborts; never sent on the wire
CLOSE_POLICY = 1008
CLOSE_PONG_TIMEOUT = 1011


class RequestError(Exception):
    """A live request Binance would answer with an error object."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class SimConnection(ServerConnection):
    """A server connection that reports every incoming frame (pings and pongs too) to the hub."""

    sim_route: tuple[bool, list[StreamName]] = (False, [])
    sim_client: Client | None = None
    sim_on_frame: Any = None

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if isinstance(event, Frame) and event.opcode in _COUNTED and self.sim_on_frame is not None:
            self.sim_on_frame(self)

    def data_received(self, data: bytes) -> None:
        # A half-open connection reads nothing: no pong, no request, not even websockets' own
        # flow control resuming the transport can make it answer. It is reset afterwards.
        if self.sim_client is not None and self.sim_client.is_half_open():
            return
        super().data_received(data)


def _parse_route(target: str) -> tuple[bool, list[str]] | None:
    """(combined, stream names) for a handshake path, or None when the path is not served."""
    parts = urlsplit(target)
    path = parts.path.rstrip("/") or "/"
    if path == "/stream":
        names = parse_qs(parts.query).get("streams", [""])[0]
        return True, [n for n in names.split("/") if n]
    if path == "/ws":
        return False, []
    if path.startswith("/ws/"):
        return False, [n for n in path[4:].split("/") if n]
    return None


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and len(value) <= 36 and value.isalnum()


def _consume(future: asyncio.Future[float]) -> None:
    if not future.cancelled():
        future.exception()


class WsServer:
    """Binance market-stream endpoint behaviour on top of a websockets server."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._tasks: set[asyncio.Task[Any]] = set()

    # handshake -------------------------------------------------------------------------------
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Gate the handshake: connection-attempt limit, path and stream names."""
        remote = str(connection.remote_address[0]) if connection.remote_address else "?"
        if not self.hub.admit(remote):
            response = connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "Too many connection attempts.\n")
            response.headers["Retry-After"] = str(int(self.hub.config.connection_window_s))
            return response
        route = _parse_route(request.path)
        if route is None:
            self.hub.counters["handshakes_rejected"] += 1
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found.\n")
        combined, names = route
        streams = [parse_stream(n) for n in dict.fromkeys(names)]
        if any(s is None for s in streams) or len(streams) > self.hub.config.max_streams_per_connection:
            self.hub.counters["handshakes_rejected"] += 1
            return connection.respond(HTTPStatus.BAD_REQUEST, "Invalid request: invalid stream.\n")
        if isinstance(connection, SimConnection):
            connection.sim_route = (combined, [s for s in streams if s is not None])
        return None

    # connection lifetime ----------------------------------------------------------------------
    async def handler(self, conn: ServerConnection) -> None:
        """Serve one connection until it closes."""
        if not isinstance(conn, SimConnection):
            raise TypeError("serve() must be given create_connection=SimConnection")
        combined, streams = conn.sim_route
        remote = str(conn.remote_address[0]) if conn.remote_address else "?"
        path = conn.request.path if conn.request is not None else ""
        client = self.hub.add_client(conn, remote, path, combined)
        conn.sim_client = client
        for stream in streams:
            self.hub.subscribe(client, stream)
        conn.sim_on_frame = self._on_frame
        helpers = [
            asyncio.create_task(self._keepalive(client)),
            asyncio.create_task(self._lifetime(client)),
        ]
        try:
            async for message in conn:
                text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
                await self._serve_request(client, text)
        except ConnectionClosed:
            pass
        finally:
            for task in helpers:
                task.cancel()
            code = client.close_code if client.close_code is not None else (conn.close_code or CLOSE_ABNORMAL)
            self.hub.remove_client(client, code)

    def _on_frame(self, conn: SimConnection) -> None:
        client = conn.sim_client
        if client is None or client.close_code is not None:
            return
        if not self.hub.count_frame(client):
            self.close(client, CLOSE_POLICY, "Too many messages")

    async def _keepalive(self, client: Client) -> None:
        """Ping every interval; drop the connection when a ping stays unanswered past the timeout."""
        cfg = self.hub.config
        pending: list[tuple[float, asyncio.Future[float]]] = []
        next_ping = time.monotonic() + cfg.ping_interval_s
        pings = 0
        while True:
            now = time.monotonic()
            pending = [(sent, fut) for sent, fut in pending if not fut.done()]
            if client.is_half_open(now):
                pending.clear()  # a silent connection never closes on its own
                next_ping = max(next_ping, client.half_open_until)
            elif pending and now - pending[0][0] >= cfg.pong_timeout_s:
                self.close(client, CLOSE_PONG_TIMEOUT, "Pong timeout")
                return
            elif now >= next_ping:
                pings += 1
                payload = f"{self.hub.clock.now_ms()}:{pings}".encode()  # unique, as websockets requires
                try:
                    waiter = await client.conn.ping(payload)
                except ConnectionClosed:
                    return
                future = asyncio.ensure_future(waiter)
                future.add_done_callback(_consume)  # a ping lost with its connection is not an error
                pending.append((now, future))
                self.hub.counters["pings_sent"] += 1
                next_ping = now + cfg.ping_interval_s
            deadline = next_ping
            if pending:
                deadline = min(deadline, pending[0][0] + cfg.pong_timeout_s)
            await asyncio.sleep(max(0.01, min(deadline - time.monotonic(), 1.0)))

    async def _lifetime(self, client: Client) -> None:
        """Binance cuts every connection after 24 hours."""
        await asyncio.sleep(self.hub.config.max_connection_age_s)
        self.close(client, CLOSE_NORMAL, "Connection lifetime expired")

    # live requests ----------------------------------------------------------------------------
    async def _serve_request(self, client: Client, text: str) -> None:
        if client.close_code is not None or client.is_half_open():
            return
        try:
            reply, apply = self._answer(client, text)
        except RequestError as exc:
            await self._send(client, ws_error(exc.code, exc.msg, self._id_of(text)))
            return
        await self._send(client, reply)
        if apply is not None:
            apply()

    @staticmethod
    def _id_of(text: str) -> Any:
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        rid = req.get("id") if isinstance(req, dict) else None
        return rid if _valid_id(rid) else None

    def _answer(self, client: Client, text: str) -> tuple[str, Any]:
        """The reply to one request and the change to apply once it is sent."""
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise RequestError(3, f"Invalid JSON: {exc}") from None
        if not isinstance(req, dict):
            raise RequestError(2, "Invalid request: expected a JSON object")
        rid = req.get("id")
        if not _valid_id(rid):
            raise RequestError(2, "Invalid request: request ID must be an unsigned integer")
        method = req.get("method")
        if method is None:
            raise RequestError(2, "Invalid request: missing field `method`")
        if method not in _METHODS:
            raise RequestError(2, _UNKNOWN_METHOD.format(method))
        params = req.get("params", [])
        if not isinstance(params, list):
            raise RequestError(2, "Invalid request: params must be an array")
        if method == "LIST_SUBSCRIPTIONS":
            return ws_result(list(client.subs), rid), None
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(client, method, params, rid)
        if not all(isinstance(p, str) for p in params):
            raise RequestError(2, "Invalid request: invalid stream")
        streams = [parse_stream(p) for p in dict.fromkeys(params)]
        if any(s is None for s in streams):
            raise RequestError(2, "Invalid request: invalid stream")
        valid = [s for s in streams if s is not None]
        if method == "SUBSCRIBE":
            total = len(set(client.subs) | {s.name for s in valid})
            if total > self.hub.config.max_streams_per_connection:
                raise RequestError(2, "Invalid request: too many streams")

            def apply_subscribe() -> None:
                for s in valid:
                    self.hub.subscribe(client, s)

            return ws_result(None, rid), apply_subscribe

        def apply_unsubscribe() -> None:
            for s in valid:
                self.hub.unsubscribe(client, s.name)

        return ws_result(None, rid), apply_unsubscribe

    @staticmethod
    def _property(client: Client, method: str, params: list[Any], rid: Any) -> tuple[str, Any]:
        if not params or not isinstance(params[0], str):
            raise RequestError(2, "Invalid request: property name must be a string")
        if params[0] != "combined":
            raise RequestError(0, "Unknown property")
        if method == "GET_PROPERTY":
            return ws_result(client.combined, rid), None
        if len(params) != 2 or not isinstance(params[1], bool):
            raise RequestError(1, "Invalid value type: expected Boolean")
        value = params[1]

        def apply_property() -> None:
            client.combined = value

        return ws_result(None, rid), apply_property

    async def _send(self, client: Client, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.conn.send(text)
            client.messages_sent += 1
            self.hub.counters["messages_sent"] += 1

    # forced endings -----------------------------------------------------------------------------
    def close(self, client: Client, code: int, reason: str) -> None:
        """Start a clean close with ``code`` (the handler records it when the connection ends)."""
        if client.close_code is not None:
            return
        client.close_code, client.close_reason = code, reason
        self._spawn(client.conn.close(code, reason))

    def abort(self, client: Client) -> None:
        """Drop the TCP connection with a reset: no close frame, no FIN."""
        if client.close_code is None:
            client.close_code, client.close_reason = CLOSE_ABNORMAL, "aborted"
        transport = client.conn.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def shutdown(self, client: Client, grace_s: float) -> None:
        """Binance's ``serverShutdown`` event, then a 1001 close after ``grace_s``."""
        if client.close_code is not None or client.shutting_down:
            return
        client.shutting_down = True  # data keeps flowing until the close

        async def run() -> None:
            await self._send(client, server_shutdown_event(self.hub.clock.now_ms()))
            if grace_s > 0:
                await asyncio.sleep(grace_s)
            self.close(client, CLOSE_GOING_AWAY, "Server shutdown")

        self._spawn(run())

    def half_open(self, client: Client, seconds: float) -> None:
        """Go totally silent: no data, no pings, no pongs (reads paused), then a TCP reset."""
        if client.conn.state is not State.OPEN:
            return
        client.half_open_until = time.monotonic() + seconds
        client.conn.transport.pause_reading()
        asyncio.get_running_loop().call_later(seconds, self._end_half_open, client)

    def _end_half_open(self, client: Client) -> None:
        if client.id in self.hub.clients and client.conn.state is not State.CLOSED:
            self.abort(client)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
