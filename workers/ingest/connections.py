"""Combined-stream WebSocket connections to the exchange, multiplexing many kline streams each.

One ``ExchangeConnection`` is one ``<EXCHANGE_WS_URL>/stream`` socket that lives forever: it connects
(paced by the agent-wide attempt limiter), SUBSCRIBEs everything it should carry in a few frames of
many names, reads, and when the socket goes it reconnects with exponential backoff and jitter. It
reconnects at once, without backoff, when the exchange announces ``serverShutdown``, before the
exchange's 24-hour cut, and when the agent finds it half-open. Every outgoing frame (SUBSCRIBE,
UNSUBSCRIBE, our pings) passes the connection's frame budget; the library answers server pings by
itself, which is why the budget keeps one frame a second spare.

``ConnectionPool`` spreads streams over as few connections as the per-connection cap allows.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from workers.ingest.limits import Backoff, SlidingWindow, frame_budget

log = logging.getLogger("tacore.ingest.connections")


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    ws_url: str
    max_streams: int = 400  # per connection (the exchange allows 1024); 700 streams -> 2 connections
    names_per_frame: int = 200
    frames_per_s: int = 4
    max_age_s: float = 23.5 * 3600  # the exchange cuts at 24 h; we move first
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    healthy_after_s: float = 10.0  # a session this long resets the backoff


class ConnectionListener(Protocol):
    def on_data(self, conn: ExchangeConnection, stream: str, data: dict[str, Any]) -> None: ...
    def on_subscribed(self, conn: ExchangeConnection, names: list[str]) -> None: ...
    def on_disconnected(self, conn: ExchangeConnection, reason: str) -> None: ...


class ExchangeConnection:
    def __init__(self, conn_id: int, config: ConnectionConfig, listener: ConnectionListener,
                 attempts: SlidingWindow) -> None:
        self.conn_id = conn_id
        self.config = config
        self.url = config.ws_url.rstrip("/") + "/stream"
        self.streams: set[str] = set()  # what this connection should carry
        self.subscribed: set[str] = set()  # what the exchange acknowledged on the current socket
        self.state = "new"
        self.connected_since: float | None = None  # epoch seconds
        self.connected_since_mono: float | None = None
        self.last_message_at = 0.0  # monotonic
        self.messages = 0
        self.sessions = 0
        self.replacements: dict[str, int] = {}
        self.subscribe_errors = 0
        self.last_close: str | None = None
        self._listener = listener
        self._attempts = attempts
        self._budget = frame_budget(config.frames_per_s)
        self._backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[tuple[str, list[str]]] = asyncio.Queue()
        self._inflight: dict[int, tuple[str, list[str]]] = {}
        self._next_id = 1
        self._replace_reason: str | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    # -- commands (event loop thread) -------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"exchange-conn-{self.conn_id}")

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 1.0)
            except Exception:
                _abort(ws)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.state = "closed"

    def subscribe(self, names: list[str]) -> None:
        fresh = [n for n in names if n not in self.streams]
        self.streams.update(fresh)
        if fresh and self._ws is not None:
            self._outbox.put_nowait(("SUBSCRIBE", fresh))

    def unsubscribe(self, names: list[str]) -> None:
        gone = [n for n in names if n in self.streams]
        self.streams.difference_update(gone)
        self.subscribed.difference_update(gone)
        if gone and self._ws is not None:
            self._outbox.put_nowait(("UNSUBSCRIBE", gone))

    def resubscribe(self, names: list[str]) -> None:
        """Restart streams that went silent: UNSUBSCRIBE then SUBSCRIBE them (two frames)."""
        names = [n for n in names if n in self.streams]
        if names and self._ws is not None:
            self.subscribed.difference_update(names)
            self._outbox.put_nowait(("UNSUBSCRIBE", names))
            self._outbox.put_nowait(("SUBSCRIBE", names))

    def replace(self, reason: str) -> None:
        """Drop the socket now and reconnect without backoff."""
        ws = self._ws
        if ws is None or self._replace_reason is not None:
            return
        self._replace_reason = reason
        self.replacements[reason] = self.replacements.get(reason, 0) + 1
        log.warning("connection %d: replacing (%s)", self.conn_id, reason)
        _abort(ws)

    async def probe(self, timeout_s: float) -> bool:
        """Ping the exchange; False when no pong comes back in time (a half-open socket)."""
        ws = self._ws
        if ws is None:
            return False
        await self._budget.acquire()
        try:
            waiter = await ws.ping()
            await asyncio.wait_for(waiter, timeout_s)
        except (TimeoutError, ConnectionClosed):
            return False
        return True

    # -- state -------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ws is not None

    def info(self) -> dict[str, Any]:
        last = None
        if self.last_message_at:
            last = round(time.time() - (time.monotonic() - self.last_message_at), 3)
        return {
            "id": self.conn_id, "url": self.url, "state": self.state, "streams": sorted(self.streams),
            "stream_count": len(self.streams), "subscribed_count": len(self.subscribed),
            "connected_since": self.connected_since, "last_message": last, "messages_received": self.messages,
            "reconnects": max(0, self.sessions - 1), "replacements": dict(self.replacements),
            "last_close": self.last_close,
        }

    # -- the connection's life -------------------------------------------------------------------
    async def _run(self) -> None:
        immediate = True
        while not self._closing:
            if not immediate:
                self.state = "backoff"
                await asyncio.sleep(self._backoff.next_delay())
            self.state = "connecting"
            await self._attempts.acquire()
            try:
                ws = await asyncio.wait_for(
                    connect(self.url, ping_interval=None, ping_timeout=None, close_timeout=1.0,
                            compression=None, max_queue=4096, max_size=2**22, open_timeout=None),
                    self.config.connect_timeout_s)
            except (OSError, TimeoutError, Exception) as exc:
                self.last_close = f"connect failed: {type(exc).__name__}: {exc}"[:200]
                log.warning("connection %d: %s", self.conn_id, self.last_close)
                immediate = False
                continue
            started = time.monotonic()
            reason = await self._session(ws)
            self.last_close = reason
            if time.monotonic() - started >= self.config.healthy_after_s:
                self._backoff.reset()
            immediate = self._replace_reason is not None
            self._replace_reason = None
            if not self._closing:
                self._listener.on_disconnected(self, reason)
        self.state = "closed"

    async def _session(self, ws: ClientConnection) -> str:
        self._ws = ws
        self.sessions += 1
        self.state = "connected"
        self.connected_since = time.time()
        self.connected_since_mono = self.last_message_at = time.monotonic()
        self.subscribed.clear()
        self._inflight.clear()
        self._outbox = asyncio.Queue()
        if self.streams:
            self._outbox.put_nowait(("SUBSCRIBE", sorted(self.streams)))
        sender = asyncio.create_task(self._send_loop(ws), name=f"exchange-conn-{self.conn_id}-send")
        age_limit = self.config.max_age_s * random.uniform(0.97, 1.0)
        timer = asyncio.get_running_loop().call_later(age_limit, self.replace, "max age")
        reason = "closed by exchange"
        try:
            async for raw in ws:
                self.messages += 1
                self.last_message_at = time.monotonic()
                self._dispatch(raw)
        except ConnectionClosed as exc:
            reason = f"connection lost ({exc})"
        except Exception as exc:  # never let one bad frame end the feed's task
            reason = f"reader failed: {type(exc).__name__}: {exc}"
            log.exception("connection %d: reader failed", self.conn_id)
            _abort(ws)
        finally:
            timer.cancel()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self._ws = None
            self.subscribed.clear()
            self.connected_since = self.connected_since_mono = None
            self.state = "disconnected"
        if self._replace_reason is not None:
            reason = f"replaced ({self._replace_reason})"
        return reason

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("connection %d: undecodable frame dropped", self.conn_id)
            return
        if not isinstance(msg, dict):
            return
        data = msg.get("data")
        if isinstance(data, dict):
            if data.get("e") == "serverShutdown":
                self.replace("serverShutdown")
                return
            self._listener.on_data(self, msg.get("stream") or "", data)
        elif "id" in msg:
            self._on_reply(msg)
        elif msg.get("e") == "serverShutdown":
            self.replace("serverShutdown")

    def _on_reply(self, msg: dict[str, Any]) -> None:
        request = self._inflight.pop(msg.get("id"), None)  # type: ignore[arg-type]
        if request is None:
            return
        method, names = request
        if msg.get("error") is not None:
            self.subscribe_errors += 1
            log.error("connection %d: %s refused: %s", self.conn_id, method, msg["error"])
            return
        if method == "SUBSCRIBE":
            live = [n for n in names if n in self.streams]
            self.subscribed.update(live)
            self._listener.on_subscribed(self, live)
        else:
            self.subscribed.difference_update(names)

    async def _send_loop(self, ws: ClientConnection) -> None:
        outbox = self._outbox
        size = self.config.names_per_frame
        while True:
            items = [await outbox.get()]
            while not outbox.empty():
                items.append(outbox.get_nowait())
            for method, names in _merge(items):
                for offset in range(0, len(names), size):
                    chunk = names[offset:offset + size]
                    await self._budget.acquire()
                    request_id = self._next_id
                    self._next_id += 1
                    self._inflight[request_id] = (method, chunk)
                    await ws.send(orjson.dumps({"method": method, "params": chunk, "id": request_id}).decode())


def _merge(items: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """Adjacent requests of the same method become one (fewer frames)."""
    merged: list[tuple[str, list[str]]] = []
    for method, names in items:
        if merged and merged[-1][0] == method:
            merged[-1][1].extend(names)
        else:
            merged.append((method, list(names)))
    return merged


def _abort(ws: ClientConnection) -> None:
    transport = ws.transport
    if transport is not None:
        transport.abort()


class ConnectionPool:
    """Assigns streams to connections: as few as the cap allows, new streams to the least loaded."""

    def __init__(self, config: ConnectionConfig, listener: ConnectionListener, attempts: SlidingWindow) -> None:
        self.config = config
        self.connections: dict[int, ExchangeConnection] = {}
        self.where: dict[str, ExchangeConnection] = {}
        self._listener = listener
        self._attempts = attempts
        self._next_id = 1

    def add(self, names: list[str]) -> None:
        fresh = [n for n in dict.fromkeys(names) if n not in self.where]
        if not fresh:
            return
        needed = math.ceil((len(self.where) + len(fresh)) / self.config.max_streams)
        while len(self.connections) < needed:
            self._open()
        plan: dict[int, list[str]] = {}
        for name in fresh:
            conn = min((c for c in self.connections.values() if len(c.streams) + len(plan.get(c.conn_id, []))
                        < self.config.max_streams),
                       key=lambda c: len(c.streams) + len(plan.get(c.conn_id, [])), default=None)
            if conn is None:
                conn = self._open()
            plan.setdefault(conn.conn_id, []).append(name)
            self.where[name] = conn
        for conn_id, batch in plan.items():
            self.connections[conn_id].subscribe(batch)

    def remove(self, names: list[str]) -> list[ExchangeConnection]:
        """Unsubscribe; returns connections left empty (the caller closes them)."""
        plan: dict[int, list[str]] = {}
        for name in names:
            conn = self.where.pop(name, None)
            if conn is not None:
                plan.setdefault(conn.conn_id, []).append(name)
        emptied = []
        for conn_id, batch in plan.items():
            conn = self.connections[conn_id]
            conn.unsubscribe(batch)
            if not conn.streams:
                emptied.append(self.connections.pop(conn_id))
        return emptied

    def resubscribe(self, names: list[str]) -> None:
        plan: dict[int, list[str]] = {}
        for name in names:
            conn = self.where.get(name)
            if conn is not None:
                plan.setdefault(conn.conn_id, []).append(name)
        for conn_id, batch in plan.items():
            self.connections[conn_id].resubscribe(batch)

    def is_subscribed(self, name: str) -> bool:
        conn = self.where.get(name)
        return conn is not None and name in conn.subscribed

    def _open(self) -> ExchangeConnection:
        conn = ExchangeConnection(self._next_id, self.config, self._listener, self._attempts)
        self._next_id += 1
        self.connections[conn.conn_id] = conn
        conn.start()
        return conn

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections.values()), return_exceptions=True)
        self.connections.clear()
        self.where.clear()
