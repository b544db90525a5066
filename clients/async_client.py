"""The asyncio client: one DEALER socket, many requests in flight, replies matched by request_id."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

import zmq
import zmq.asyncio

from clients.curve import CurveKeys, HandshakeWatch
from clients.envelope import decode_reply, encode_request, in_progress_pause, new_request_id
from clients.errors import KeyRefused, RemoteError, RequestTimeout
from clients.methods import ServiceMethods


class AsyncClient(ServiceMethods[Any]):
    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", *, timeout_ms: float = 5000, retries: int = 1,
                 context: zmq.asyncio.Context | None = None, internal: bool = False,
                 curve: CurveKeys | None = None) -> None:
        self.endpoint = endpoint
        self.internal = internal  # TACore's own housekeeping: counted apart from user traffic
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.curve = curve  # keys for a broker with keys on; a refused key raises KeyRefused
        self._handshake: HandshakeWatch | None = None
        self._own_context = context is None
        self.context = context or zmq.asyncio.Context()
        self._socket: zmq.asyncio.Socket | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        if self._socket is not None:
            return
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        if self.curve is not None:
            self.curve.apply(sock)
            self._handshake = HandshakeWatch(sock)
        sock.connect(self.endpoint)
        self._socket = sock
        self._reader = asyncio.create_task(self._read_replies())

    async def _read_replies(self) -> None:
        assert self._socket is not None
        recv = self._socket.recv_multipart
        while True:
            frames = await recv()
            try:
                reply = decode_reply(frames[-1])
            except ValueError:
                continue
            future = self._pending.pop(str(reply.get("request_id")), None)
            if future is not None and not future.done():
                future.set_result(reply)

    async def request(self, method: str, params: dict[str, Any] | None = None, *, request_id: str | None = None,
                      priority: int | None = None, timeout_ms: float | None = None,
                      deadline_ms: float | None = None) -> dict[str, Any]:
        await self.connect()
        assert self._socket is not None
        request_id = request_id or new_request_id()
        frame = encode_request(method, params, request_id, priority, deadline_ms, self.internal)
        wait_s = (self.timeout_ms if timeout_ms is None else timeout_ms) / 1000.0
        loop = asyncio.get_running_loop()
        attempts = self.retries + 1
        for attempt in range(attempts):
            future = self._pending.get(request_id)
            if future is None or future.done():
                future = self._pending[request_id] = loop.create_future()
            await self._socket.send_multipart([b"", frame])
            try:
                reply = await asyncio.wait_for(asyncio.shield(future), wait_s)
            except TimeoutError:
                continue
            pause = in_progress_pause(reply, wait_s * 1000.0) if attempt + 1 < attempts else None
            if pause is None:
                return reply
            await asyncio.sleep(pause)  # the first run is still open: ask again for its reply
        self._pending.pop(request_id, None)
        refusal = self._handshake.check() if self._handshake is not None else None
        if refusal is not None:
            raise KeyRefused(method, request_id, attempts, wait_s * 1000.0, refusal)
        raise RequestTimeout(method, request_id, attempts, wait_s * 1000.0)

    async def call(self, method: str, params: dict[str, Any] | None = None, **options: Any) -> Any:
        reply = await self.request(method, params, **options)
        if reply.get("status") != "success":
            raise RemoteError.from_reply(reply)
        return reply.get("data")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, zmq.ZMQError):
                await self._reader
            self._reader = None
        if self._handshake is not None:
            self._handshake.close()
            self._handshake = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        if self._own_context:
            self.context.term()

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
