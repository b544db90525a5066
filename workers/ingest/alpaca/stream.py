"""The one connection to Alpaca's bars stream (``<ALPACA_STREAM_URL>/v2/<feed>``; Alpaca allows one per
key pair): connect, wait for ``connected``, authenticate, subscribe ``bars`` and ``updatedBars`` for
every symbol the feed carries, read.

It reconnects forever with exponential backoff and jitter; after ``auth failed`` (402) or
``insufficient subscription`` (409) it waits ``auth_retry_s`` before trying again (the key pair must
change first), after ``connection limit exceeded`` (406, another client holds the key pair's one
connection) the backoff applies. Symbols added or removed while connected go out as ``subscribe`` /
``unsubscribe`` diffs; the server's ``subscription`` answer says what actually flows. WebSocket pings
(every 20 s, 20 s to answer) find a dead socket; outside trading hours a silent stream is normal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from workers.ingest.alpaca.messages import (
    BarPoint,
    StreamError,
    Subscription,
    Success,
    auth_message,
    parse_frame,
    subscribe_message,
)
from workers.ingest.limits import Backoff

log = logging.getLogger("tacore.ingest.alpaca.stream")

CHANNELS = ("bars", "updatedBars")
_FATAL_AUTH = {402: "auth failed", 409: "insufficient subscription"}


class StreamListener(Protocol):
    def on_bar(self, point: BarPoint) -> None: ...
    def on_subscribed(self, symbols: list[str]) -> None: ...
    def on_disconnected(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamConfig:
    url: str  # the full endpoint, e.g. wss://stream.data.alpaca.markets/v2/iex
    key_id: str
    secret_key: str
    connect_timeout_s: float = 10.0
    reply_timeout_s: float = 10.0  # for connected / authenticated / subscription
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    auth_retry_s: float = 60.0
    healthy_after_s: float = 10.0  # a session this long resets the backoff
    ping_interval_s: float = 20.0


class StreamRefused(Exception):
    def __init__(self, error: StreamError) -> None:
        super().__init__(f"{error.code} {error.msg}")
        self.error = error


class AlpacaStream:
    def __init__(self, config: StreamConfig, listener: StreamListener) -> None:
        self.config = config
        self.state = "idle"
        self.desired: set[str] = set()
        self.confirmed: set[str] = set()  # symbols whose bars the server confirmed on this socket
        self.connected_since: float | None = None
        self.last_message_at = 0.0  # monotonic
        self.messages = 0
        self.bars = 0
        self.sessions = 0
        self.errors: dict[str, int] = {}
        self.last_error: str | None = None
        self.last_close: str | None = None
        self._listener = listener
        self._ws: ClientConnection | None = None
        self._authenticated = False
        self._requested: set[str] = set()
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- commands (event loop) ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alpaca-stream")

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        self.state = "closed"

    def set_symbols(self, symbols: set[str]) -> None:
        """The symbols whose bars should flow; diffs go out at once on a live socket."""
        self.desired = set(symbols)
        self._wake.set()
        if self._ws is not None and self._authenticated:
            task = asyncio.create_task(self._send_diff(self._ws))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not self.desired and self._ws is not None:
            task = asyncio.create_task(self._ws.close())  # nothing to carry: free the key pair's connection
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def streaming(self) -> bool:
        return self.state == "streaming"

    def info(self) -> dict[str, Any]:
        last = None
        if self.last_message_at:
            last = round(time.time() - (time.monotonic() - self.last_message_at), 3)
        return {"url": self.config.url, "state": self.state, "symbols": sorted(self.desired),
                "subscribed": sorted(self.confirmed), "connected_since": self.connected_since, "last_message": last,
                "messages_received": self.messages, "bars_received": self.bars,
                "reconnects": max(0, self.sessions - 1), "errors": dict(self.errors), "last_error": self.last_error,
                "last_close": self.last_close}

    # -- the connection's life ---------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = Backoff(self.config.backoff_initial_s, self.config.backoff_max_s)
        while not self._closing:
            if not self.desired:
                self.state = "idle"
                self._wake.clear()
                await self._wake.wait()
                continue
            self.state = "connecting"
            started = time.monotonic()
            wait: float | None = None
            try:
                reason = await self._connect_and_serve()
            except StreamRefused as exc:
                reason = f"refused: {exc}"
                if exc.error.code in _FATAL_AUTH:
                    self.state = "auth_failed"
                    wait = self.config.auth_retry_s
            except (OSError, TimeoutError, ConnectionClosed) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:200]
            except Exception as exc:  # never let one bad frame end the feed's task
                reason = f"failed: {type(exc).__name__}: {exc}"[:200]
                log.exception("alpaca stream failed")
            self.last_close = reason
            if (self.connected_since is not None or self.confirmed) and not self._closing:
                self._listener.on_disconnected(reason)  # not when we close it ourselves (an orderly stop)
            self._ws, self._authenticated, self.connected_since = None, False, None
            self.confirmed.clear()
            self._requested.clear()
            if self._closing:
                break
            if time.monotonic() - started >= self.config.healthy_after_s:
                backoff.reset()
            if wait is None:
                self.state = "backoff"
                wait = backoff.next_delay()
            log.warning("alpaca stream down (%s); retrying in %.1f s", reason, wait)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)  # a symbol change retries at once
        self.state = "closed"

    async def _connect_and_serve(self) -> str:
        cfg = self.config
        ws = await asyncio.wait_for(connect(cfg.url, ping_interval=cfg.ping_interval_s,
                                            ping_timeout=cfg.ping_interval_s, close_timeout=1.0,
                                            max_size=2**24, open_timeout=None), cfg.connect_timeout_s)
        self._ws = ws
        self.sessions += 1
        try:
            await self._expect(ws, Success, "connected")
            self.state = "authenticating"
            await ws.send(auth_message(cfg.key_id, cfg.secret_key))
            await self._expect(ws, Success, "authenticated")
            self._authenticated = True
            self.connected_since = time.time()
            self.state = "subscribing"
            await self._send_diff(ws)
            async for raw in ws:
                self._dispatch(raw)
        except ConnectionClosed as exc:
            return f"connection lost ({exc})"
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
        return "closed by server"

    async def _expect(self, ws: ClientConnection, kind: type, msg: str) -> None:
        """Read until the control message ``msg`` arrives; an error message refuses the session."""
        deadline = time.monotonic() + self.config.reply_timeout_s
        while True:
            raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
            self._count(raw)
            for message in parse_frame(raw).messages:
                if isinstance(message, StreamError):
                    self._error(message)
                    raise StreamRefused(message)
                if isinstance(message, kind) and getattr(message, "msg", None) == msg:
                    return

    async def _send_diff(self, ws: ClientConnection) -> None:
        async with self._send_lock:
            add = sorted(self.desired - self._requested)
            drop = sorted(self._requested - self.desired)
            try:
                if add:
                    await ws.send(subscribe_message("subscribe", {c: add for c in CHANNELS}))
                if drop:
                    await ws.send(subscribe_message("unsubscribe", {c: drop for c in CHANNELS}))
            except ConnectionClosed:
                return
            self._requested = (self._requested | set(add)) - set(drop)
            if not add and not drop and self.state == "subscribing":
                self.state = "streaming"

    def _count(self, raw: str | bytes) -> None:
        self.messages += 1
        self.last_message_at = time.monotonic()

    def _dispatch(self, raw: str | bytes) -> None:
        self._count(raw)
        parsed = parse_frame(raw)
        if parsed.malformed:
            log.warning("alpaca stream: undecodable frame dropped")
        for message in parsed.messages:
            if isinstance(message, BarPoint):
                self.bars += 1
                self._listener.on_bar(message)
            elif isinstance(message, Subscription):
                bars = set(message.channels.get("bars", []))
                fresh = sorted(bars - self.confirmed)
                self.confirmed = bars
                self.state = "streaming"
                if fresh:
                    self._listener.on_subscribed(fresh)
            elif isinstance(message, StreamError):
                self._error(message)

    def _error(self, error: StreamError) -> None:
        key = str(error.code)
        self.errors[key] = self.errors.get(key, 0) + 1
        self.last_error = f"{error.code} {error.msg}"
        log.error("alpaca stream error %d: %s", error.code, error.msg)
