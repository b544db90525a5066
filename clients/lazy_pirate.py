"""The synchronous Lazy Pirate client: REQ socket, poll with a timeout, retry on a fresh socket.

Every retry of one call carries the same request_id, so the broker answers a retry of a request it
already ran with the reply it already has, instead of running it twice; an ``IN_PROGRESS`` answer (a
non-idempotent call's first run is still open, e.g. after a broker restart) is asked again later,
within the same retries. With ``curve`` (a broker with keys on) the socket speaks CURVE; a key the
broker refuses raises ``KeyRefused``.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import zmq

from clients.curve import CurveKeys, HandshakeWatch
from clients.envelope import decode_reply, encode_request, in_progress_pause, new_request_id
from clients.errors import KeyRefused, RemoteError, RequestTimeout
from clients.methods import ServiceMethods


class LazyPirateClient(ServiceMethods[Any]):
    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", *, timeout_ms: float = 2500, retries: int = 3,
                 context: zmq.Context[Any] | None = None, internal: bool = False,
                 curve: CurveKeys | None = None) -> None:
        self.endpoint = endpoint
        self.internal = internal  # TACore's own housekeeping: counted apart from user traffic
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.curve = curve
        self._own_context = context is None
        self.context: zmq.Context[Any] = context or zmq.Context()
        self._handshake: HandshakeWatch | None = None
        self._socket = self._connect()

    def _connect(self) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self.context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            self.curve.apply(sock)
            self._handshake = HandshakeWatch(sock)
        sock.connect(self.endpoint)
        return sock

    def _close_socket(self) -> str | None:
        """Close the socket; the handshake refusal it saw, if any."""
        refusal = None
        if self._handshake is not None:
            refusal = self._handshake.check()
            self._handshake.close()
            self._handshake = None
        self._socket.close()
        return refusal

    def request(self, method: str, params: dict[str, Any] | None = None, *, request_id: str | None = None,
                priority: int | None = None, timeout_ms: float | None = None,
                deadline_ms: float | None = None) -> dict[str, Any]:
        """Send one call and return the whole reply; ``deadline_ms`` becomes the request's ``timeout_ms``."""
        request_id = request_id or new_request_id()
        frame = encode_request(method, params, request_id, priority, deadline_ms, self.internal)
        wait_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        attempts = self.retries + 1
        refusal = None
        for attempt in range(attempts):
            self._socket.send(frame)
            while self._socket.poll(int(wait_ms), zmq.POLLIN):
                reply = decode_reply(self._socket.recv())
                if reply.get("request_id") in (request_id, None):
                    if attempt + 1 < attempts and (pause := in_progress_pause(reply, wait_ms)) is not None:
                        time.sleep(pause)  # the first run is still open: ask again for its reply
                        break
                    return reply
            else:
                # Lazy Pirate: a REQ socket that got no answer is stuck; drop it and start a new one.
                refusal = self._close_socket()
                self._socket = self._connect()
        if refusal is not None:
            raise KeyRefused(method, request_id, attempts, wait_ms, refusal)
        raise RequestTimeout(method, request_id, attempts, wait_ms)

    def call(self, method: str, params: dict[str, Any] | None = None, **options: Any) -> Any:
        """Send one call and return its data; an error reply raises ``RemoteError``."""
        reply = self.request(method, params, **options)
        if reply.get("status") != "success":
            raise RemoteError.from_reply(reply)
        return reply.get("data")

    def close(self) -> None:
        self._close_socket()
        if self._own_context:
            self.context.term()

    def __enter__(self) -> LazyPirateClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
