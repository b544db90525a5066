"""Ships request-log records from the broker to the recorder process, in batches, off the hot path.

The broker serializes each answered request's record at once (bytes, which the garbage collector
never looks at: a batch of live lists, 200 ms of traffic, was what made the broker's collections
run, and the full ones took tens of ms) and every ``flush_ms`` (or ``batch_size`` records) the batch
goes out as one PUSH message, a JSON array of the records. If the recorder is slow or away the records wait
here, up to ``buffer_limit``; past that the oldest are dropped and counted.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import orjson
import zmq

log = logging.getLogger("tacore.broker")


class RecordShipper:
    def __init__(self, context: zmq.Context[Any], endpoint: str, *, batch_size: int, flush_ms: int,
                 buffer_limit: int) -> None:
        self._socket = context.socket(zmq.PUSH)
        self._socket.setsockopt(zmq.SNDHWM, 1000)
        self._socket.setsockopt(zmq.LINGER, 3000)
        self._socket.connect(endpoint)
        self._batch: list[bytes] = []  # each record as JSON
        self._backlog: deque[tuple[bytes, int]] = deque()
        self._backlog_records = 0
        self.batch_size = batch_size
        self.flush_s = flush_ms / 1000.0
        self.buffer_limit = buffer_limit
        self._last_flush = time.monotonic()
        self.shipped = 0
        self.dropped = 0
        self.last_drop_at: float | None = None  # epoch seconds
        self._drops_unlogged = 0
        self._drop_logged_at = 0.0

    def add(self, record: list[Any]) -> None:
        self._batch.append(orjson.dumps(record))
        if len(self._batch) >= self.batch_size:
            self.flush()

    @property
    def pending(self) -> int:
        """Records not shipped yet (batched or waiting for the recorder)."""
        return len(self._batch) + self._backlog_records

    def due(self, now: float) -> bool:
        return bool(self._batch or self._backlog) and now - self._last_flush >= self.flush_s

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if self._batch:
            batch, self._batch = self._batch, []
            self._backlog.append((b"[" + b",".join(batch) + b"]", len(batch)))
            self._backlog_records += len(batch)
        while self._backlog:
            message, count = self._backlog[0]
            try:
                self._socket.send(message, zmq.NOBLOCK)
            except zmq.Again:
                break
            self._backlog.popleft()
            self._backlog_records -= count
            self.shipped += count
        while self._backlog_records > self.buffer_limit and self._backlog:
            _, count = self._backlog.popleft()
            self._backlog_records -= count
            self._dropped(count)

    def _dropped(self, count: int) -> None:
        """Count records dropped past the bound, and say so (at most a line every 10 s, with the total)."""
        self.dropped += count
        self._drops_unlogged += count
        now = time.time()
        self.last_drop_at = now
        if now - self._drop_logged_at >= 10.0:
            log.warning("request log backlog over %d records (the recorder is away or slow): dropped the oldest "
                        "%d, %d in all", self.buffer_limit, self._drops_unlogged, self.dropped)
            self._drops_unlogged = 0
            self._drop_logged_at = now

    def close(self) -> None:
        self.flush()
        if self._backlog:
            log.warning("request log: %d records not shipped at shutdown", self._backlog_records)
        self._socket.close()

