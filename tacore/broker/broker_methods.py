"""The methods the broker answers itself: ``broker.status``, ``broker.metrics``, ``broker.report``, and the
cancel verbs (``broker.cancel``, ``broker.preempt``; ``cancel.py``).

None of them is queued or reaches a worker: each is answered in the wake-up that brought it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tacore.broker import cancel
from tacore.errors import ErrorCode, InvalidParams
from tacore.protocol.envelope import Request, encode_error, encode_reply

if TYPE_CHECKING:
    from tacore.broker.broker import Broker

BROKER_METHODS: frozenset[str] = frozenset({"broker.status", "broker.metrics", "broker.report", *cancel.CANCEL_METHODS})


def on_broker_method(broker: Broker, envelope: list[bytes], request: Request, now: float) -> None:
    method = request.method
    request_id = request.request_id
    if method == "broker.status":
        data = broker.status()
    elif method == "broker.metrics":
        data = broker.metrics()
    elif method == "broker.report":
        try:
            data = broker.reports.accept(request.params)
        except InvalidParams as exc:
            broker._send_client(envelope, encode_error(request_id, ErrorCode.INVALID_PARAMS, exc.message,
                                                       exc.details))
            return
    else:
        parsed = cancel.parse(method, request.params)
        if isinstance(parsed, list):
            broker._send_client(envelope, encode_error(request_id, ErrorCode.INVALID_PARAMS,
                                                       f"invalid params for {method}", parsed))
            return
        data = cancel.cancel(broker, parsed[0], cancel.CANCEL_METHODS[method], parsed[1], now)
    broker._send_client(envelope, encode_reply(request_id, data, (time.monotonic() - now) * 1000.0))
