"""Small client-side helpers shared by the simulator's integration tests."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode


async def recv_json(ws: ClientConnection, timeout: float = 2.0) -> Any:
    """The next message, decoded; fails the test on silence."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_reply(ws: ClientConnection, request_id: Any, timeout: float = 2.0) -> dict[str, Any]:
    """Skip data until the reply to ``request_id`` arrives."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        is_reply = isinstance(msg, dict) and ("result" in msg or "error" in msg)
        if is_reply and msg.get("id") == request_id:
            return dict(msg)


async def collect(ws: ClientConnection, seconds: float, limit: int = 100_000) -> list[Any]:
    """Every message received for ``seconds`` (bounded in count)."""
    out: list[Any] = []
    deadline = time.monotonic() + seconds
    while len(out) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            out.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            break
    return out


def kline(msg: dict[str, Any]) -> dict[str, Any]:
    """The ``k`` object of a raw or combined kline message."""
    data = msg.get("data", msg)
    k: dict[str, Any] = data["k"]
    return k


def row_of(k: dict[str, Any]) -> list[Any]:
    """A streamed kline in REST row order (the 12 fields of /api/v3/klines)."""
    return [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], "0"]


class PingCountingConnection(ClientConnection):
    """A client connection that counts the pings the server sends."""

    pings_received = 0

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings_received += 1
