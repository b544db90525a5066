"""Market-data events on a ZeroMQ PUB socket: one ``DATA_READY`` per closed candle.

Two frames per event: the topic ``kline.<SYMBOL>.<interval>`` (subscribers filter on a prefix, e.g.
``kline.BTCUSDT.`` or ``kline.``) and a JSON object::

    {"event": "DATA_READY", "symbol": "BTCUSDT", "interval": "1m", "candle": {...as in kline.history...},
     "ts_event": <exchange event time, epoch ms>, "ts_publish": <publish time, epoch ms>}

PUB never blocks: a slow subscriber loses events past its high-water mark rather than stalling the
feed, and the candle is in storage anyway (``kline.history``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import zmq

DATA_READY = "DATA_READY"
_SNDHWM = 100_000


def data_ready_topic(symbol: str, interval: str) -> str:
    return f"kline.{symbol}.{interval}"


class EventPublisher:
    """Owns the PUB socket; use from one thread only (the data agent's event loop)."""

    def __init__(self, endpoint: str, *, context: zmq.Context[Any] | None = None) -> None:
        self.endpoint = endpoint
        self.published = 0
        self.dropped = 0
        self._context: zmq.Context[Any] = context or zmq.Context.instance()
        self._socket: zmq.Socket[Any] = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, _SNDHWM)
        self._socket.bind(endpoint)

    def data_ready(self, symbol: str, interval: str, candle: dict[str, Any], ts_event: int) -> None:
        body = orjson.dumps({
            "event": DATA_READY, "symbol": symbol, "interval": interval, "candle": candle,
            "ts_event": ts_event, "ts_publish": int(time.time() * 1000),
        })
        try:
            self._socket.send_multipart([data_ready_topic(symbol, interval).encode(), body], zmq.NOBLOCK)
            self.published += 1
        except zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        self._socket.close(0)


class EventSubscriber:
    """A SUB socket for ``DATA_READY`` events (the flow engine, tests, any consumer)."""

    def __init__(self, endpoint: str, topics: tuple[str, ...] = ("kline.",), *,
                 context: zmq.Context[Any] | None = None) -> None:
        self._context: zmq.Context[Any] = context or zmq.Context.instance()
        self._socket: zmq.Socket[Any] = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._socket.connect(endpoint)

    def recv(self, timeout_ms: int) -> tuple[str, dict[str, Any]] | None:
        """The next event as (topic, body), or None when none arrives in time."""
        if not self._socket.poll(timeout_ms):
            return None
        topic, body = self._socket.recv_multipart()
        event: dict[str, Any] = orjson.loads(body)
        return topic.decode(), event

    def close(self) -> None:
        self._socket.close(0)
